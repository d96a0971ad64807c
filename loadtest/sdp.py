"""A compact subscriber answer, as a max-bundle client writes it.

The server refuses signaling messages over 64 KiB, and aiortc's answer repeats ICE credentials, three
DTLS fingerprints and the candidates in every m-line and keeps every offered codec: with ~20
participants (two m-lines each) the answer passes 64 KiB and the subscriber connection stops being
renegotiated. The same answer, valid and equivalent, fits ~3x more m-lines when the transport
attributes are said once at session level (RFC 8843 bundle: one transport), candidates only in the
first m-line, only the codec the bot uses (VP8 with its RTX, Opus) and no SSRC lines for streams a
receive-only m-line never sends.
"""

from __future__ import annotations

import re

from sfu.simulcast_sdp import sdp_sections

CRLF = "\r\n"
TRANSPORT_PREFIXES = ("a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:", "a=setup:", "a=ice-options:")
KEEP_CODECS = {"vp8", "rtx", "opus"}




def _kept_payload_types(section: list[str]) -> set[str] | None:
    """Payload types of the kept codecs (RTX only when it repairs a kept codec); None: keep all."""
    names = {m.group(1): m.group(2).lower() for line in section
             if (m := re.match(r"a=rtpmap:(\d+) ([^/]+)/", line))}
    if not names:
        return None
    kept = {pt for pt, name in names.items() if name in KEEP_CODECS and name != "rtx"}
    if not kept:
        return None
    for line in section:
        m = re.match(r"a=fmtp:(\d+) apt=(\d+)", line)
        if m and names.get(m.group(1)) == "rtx" and m.group(2) in kept:
            kept.add(m.group(1))
    return kept


def _compact_media(section: list[str], first: bool) -> list[str]:
    kept = _kept_payload_types(section)
    out = []
    for line in section:
        if line.startswith(TRANSPORT_PREFIXES):
            continue
        if not first and (line.startswith("a=candidate:") or line == "a=end-of-candidates"):
            continue
        if line.startswith(("a=ssrc:", "a=ssrc-group:", "a=msid:")) and "a=recvonly" in section:
            continue
        if kept is not None:
            m = re.match(r"a=(?:rtpmap|fmtp|rtcp-fb):(\d+)\b", line)
            if m and m.group(1) not in kept:
                continue
            if line.startswith("m="):
                head, _, formats = line.partition(" UDP/TLS/RTP/SAVPF ")
                if formats:
                    line = f"{head} UDP/TLS/RTP/SAVPF " + " ".join(f for f in formats.split() if f in kept)
        out.append(line)
    return out


def compact_answer(sdp: str) -> str:
    sections = sdp_sections(sdp)
    if len(sections) < 2:
        return sdp
    first_media = sections[1]
    transport = [line for line in first_media if line.startswith(TRANSPORT_PREFIXES)]
    fingerprints = [line for line in transport if line.startswith("a=fingerprint:")]
    # One fingerprint is enough (the strongest aiortc offers first is sha-256, which every peer knows).
    transport = [line for line in transport if not line.startswith("a=fingerprint:")] + fingerprints[:1]
    session = sections[0] + transport
    media = [_compact_media(section, first=(n == 0)) for n, section in enumerate(sections[1:])]
    return CRLF.join(line for section in [session, *media] for line in section) + CRLF
