"""File types from content (magic numbers), never from the name or the Content-Type a client claims,
and the rules for when a claim contradicts the content."""

from __future__ import annotations

import re
import unicodedata
import urllib.parse

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
EXECUTABLE_EXTENSIONS = {"exe", "dll", "msi", "com", "scr", "bat", "cmd", "ps1", "vbs", "sh", "bin", "elf",
                         "app", "apk", "deb", "rpm", "dmg", "jar", "so", "dylib"}
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
    for offset, magic, mime in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as exc:
            if exc.start >= len(head) - 3:  # a character cut by the end of the sample
                return "text/plain"
    return OCTET


def extension(name: str) -> str:
    _, dot, ext = name.rpartition(".")
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


_UNSAFE = re.compile(r'[\x00-\x1f\x7f<>:"|?*\\/]+')


def sanitize_name(raw: str | None) -> str:
    """A display name safe anywhere: no directories, control characters or leading dots; ≤ 200 chars."""
    name = unicodedata.normalize("NFC", urllib.parse.unquote(raw or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 16 else name[:200]
    return name or "file"
