"""File types from content (magic numbers), never from the name or the Content-Type a client claims,
and the rules for when a claim contradicts the content."""

from __future__ import annotations

import re
import unicodedata
import urllib.parse
import zipfile
from pathlib import Path

EXECUTABLE = "application/x-executable"
OCTET = "application/octet-stream"

_MAGIC: list[tuple[int, bytes, str]] = [
    (0, b"\x7fELF", EXECUTABLE),
    (0, b"MZ", EXECUTABLE),
    (0, b"\xfe\xed\xfa\xce", EXECUTABLE),
    (0, b"\xfe\xed\xfa\xcf", EXECUTABLE),
    (0, b"\xce\xfa\xed\xfe", EXECUTABLE),
    (0, b"\xcf\xfa\xed\xfe", EXECUTABLE),
    (0, b"\xca\xfe\xba\xbe", EXECUTABLE),
    (0, b"#!", EXECUTABLE),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"PK\x05\x06", "application/zip"),
    (0, b"\x1f\x8b", "application/gzip"),
    (0, b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (0, b"OggS", "audio/ogg"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"fLaC", "audio/flac"),
    (4, b"ftyp", "video/mp4"),
]

# What a name's extension promises; the content must agree.
EXTENSIONS: dict[str, str] = {
    "png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp",
    "pdf": "application/pdf", "zip": "application/zip", "gz": "application/gzip", "tgz": "application/gzip",
    "7z": "application/x-7z-compressed", "docx": "application/zip", "xlsx": "application/zip",
    "pptx": "application/zip", "odt": "application/zip", "ods": "application/zip", "odp": "application/zip",
    "webm": "video/webm", "mp4": "video/mp4", "m4a": "video/mp4", "mov": "video/mp4", "ogg": "audio/ogg",
    "opus": "audio/ogg", "mp3": "audio/mpeg", "wav": "audio/wav", "flac": "audio/flac",
    "txt": "text/plain", "md": "text/plain", "csv": "text/plain", "json": "text/plain", "log": "text/plain",
    "svg": "text/plain", "xml": "text/plain", "html": "text/plain", "htm": "text/plain", "yaml": "text/plain",
    "yml": "text/plain", "ics": "text/plain", "vtt": "text/plain", "srt": "text/plain",
}
# Names Windows, macOS or a desktop would run (or install) on a double click, whatever the content says:
# script hosts (.js/.wsf/.hta run under wscript/mshta), installers, shortcuts and packages.
EXECUTABLE_EXTENSIONS = {
    "exe", "dll", "msi", "msp", "mst", "com", "scr", "pif", "cpl", "bat", "cmd", "ps1", "psm1", "psd1",
    "vbs", "vbe", "js", "jse", "wsf", "wsh", "wsc", "hta", "sct", "lnk", "url", "reg", "inf", "gadget",
    "appx", "msix", "msixbundle", "appref-ms", "application", "sh", "bash", "zsh", "csh", "ksh", "command",
    "bin", "elf", "run", "app", "apk", "deb", "rpm", "dmg", "pkg", "jar", "jnlp", "class", "so", "dylib",
}
# Claimed Content-Types that are compatible with a sniffed type beyond equality.
_COMPATIBLE: dict[str, tuple[str, ...]] = {
    "text/plain": ("text/", "application/json", "application/xml", "image/svg+xml", "application/yaml"),
    "application/zip": ("application/zip", "application/x-zip", "application/vnd.openxmlformats",
                        "application/vnd.oasis.opendocument", "application/java-archive"),
    "video/mp4": ("video/", "audio/mp4", "audio/x-m4a"),
    "audio/ogg": ("audio/ogg", "application/ogg", "video/ogg", "audio/opus"),
    "audio/wav": ("audio/wav", "audio/x-wav", "audio/wave"),
    "application/gzip": ("application/gzip", "application/x-gzip", "application/x-tar"),
}


def sniff(head: bytes) -> str:
    # A note that happens to start with "MZ" is text; a DOS/PE header is binary.
    mz_text = head[:2] == b"MZ" and _plain_text(head)
    for offset, magic, mime in _MAGIC:
        if head[offset:offset + len(magic)] == magic and not mz_text:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if _plain_text(head):
        # An HTML application runs with the user's rights under mshta, whatever it is called.
        return EXECUTABLE if _HTA.search(head) else "text/plain"
    return OCTET


def _plain_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the end of the sample


# "<hta:application" anywhere in the sample (HTAs begin as ordinary HTML, so no fixed offset).
_HTA = re.compile(rb"<\s*hta:application\b", re.IGNORECASE)
JAR_MANIFEST = "META-INF/MANIFEST.MF"


def is_jar(path: Path) -> bool:
    """A zip with a Java manifest is a jar: `java -jar` (or a double click) runs it."""
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.upper() == JAR_MANIFEST for n in z.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return False  # not a readable zip: nothing Java would run either


def extension(name: str) -> str:
    # Windows drops trailing dots and spaces, so "run.exe. " opens as run.exe.
    _, dot, ext = name.rstrip(". ").rpartition(".")
    return ext.lower() if dot else ""


def claim_conflicts(sniffed: str, name: str, claimed: str | None) -> str | None:
    """Why the name or the claimed Content-Type contradicts the content, or None."""
    ext = extension(name)
    promised = EXTENSIONS.get(ext)
    if promised is not None and promised != sniffed:
        return f"the name says .{ext} but the content is {sniffed}"
    if claimed:
        claim = claimed.split(";")[0].strip().lower()
        if claim and claim != OCTET and claim != sniffed:
            if not any(claim.startswith(p) for p in _COMPATIBLE.get(sniffed, ())):
                return f"the upload claims {claim} but the content is {sniffed}"
    return None


def is_executable(sniffed: str, name: str) -> bool:
    return sniffed == EXECUTABLE or extension(name) in EXECUTABLE_EXTENSIONS


def type_allowed(sniffed: str, allowed: tuple[str, ...]) -> bool:
    if not allowed:
        return True
    for pattern in allowed:
        if pattern == sniffed or (pattern.endswith("/*") and sniffed.startswith(pattern[:-1])):
            return True
    return False


# Also the bidi controls: "photo\u202egnp.exe" would show as "photoexe.png".
_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/\u200e\u200f\u202a-\u202e\u2066-\u2069]+')


def sanitize_name(raw: str | None) -> str:
    """A display name safe anywhere: no directories, control characters or leading dots; ≤ 200 chars."""
    name = unicodedata.normalize("NFC", urllib.parse.unquote(raw or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().strip(". ")
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else name[:200]
    return name or "file"
