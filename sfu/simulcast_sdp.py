"""Simulcast in SDP (RFC 8853 `a=simulcast`, RFC 8851 `a=rid`), which aiortc's SDP code drops.

We read the layers a publisher offers, and add the matching `recv` lines to our answer, as text.
Pure functions over SDP strings: no WebRTC library here.
"""

from __future__ import annotations

import re

CRLF = "\r\n"
# RFC 8851 rid-id characters; WebRTC 1.0 caps a rid at 16, which also fits a one-byte RTP header
# extension element. Anything else in an offer is not a layer we accept (it would be echoed into our
# answer, the `tracks` table and pipe links as is).
RID = re.compile(r"[A-Za-z0-9_-]{1,16}")
_SEND_RID = re.compile(r"a=rid:(\S+) send\b")
_SIMULCAST_SEND = re.compile(r"a=simulcast:send (\S+)")


def sdp_sections(sdp: str) -> list[list[str]]:
    """Splits an SDP into the session section and one section per m-line (lists of lines)."""
    sections: list[list[str]] = [[]]
    for line in sdp.replace("\r\n", "\n").split("\n"):
        if not line:
            continue
        if line.startswith("m="):
            sections.append([])
        sections[-1].append(line)
    return sections


def _mid(section: list[str]) -> str | None:
    for line in section:
        if line.startswith("a=mid:"):
            return line[len("a=mid:"):].strip()
    return None


def offered_layers(offer_sdp: str) -> dict[str, list[str]]:
    """mid -> rids the offerer sends, in its `a=simulcast:send` order (one per alternative group)."""
    layers: dict[str, list[str]] = {}
    for section in sdp_sections(offer_sdp)[1:]:
        mid = _mid(section)
        # Only a=rid and a=simulcast lines are matched (each join's offer has ~80 lines, a few of them these).
        send_rids = {m.group(1) for line in section
                     if line.startswith("a=rid:") and (m := _SEND_RID.match(line))}
        for line in section:
            match = _SIMULCAST_SEND.match(line) if line.startswith("a=simulcast:") else None
            if mid is not None and match:
                # "h;m;l" or with alternatives "h,h2;l": take the first of each group, skip paused (~).
                rids = [group.split(",")[0].lstrip("~") for group in match.group(1).split(";")]
                valid = [r for r in rids if r in send_rids and RID.fullmatch(r)]
                layers[mid] = list(dict.fromkeys(valid))  # a rid named twice is one layer
    return {mid: rids for mid, rids in layers.items() if len(rids) > 1}


def answer_with_simulcast(answer_sdp: str, layers: dict[str, list[str]]) -> str:
    """Adds `a=rid:X recv` and `a=simulcast:recv ...` to the answer's m-sections named in `layers`."""
    sections = sdp_sections(answer_sdp)
    for section in sections[1:]:
        mid = _mid(section)
        rids = layers.get(mid) if mid is not None else None
        if not rids or any(line.startswith("a=simulcast:") for line in section):
            continue
        section.extend(f"a=rid:{rid} recv" for rid in rids)
        section.append("a=simulcast:recv " + ";".join(rids))
    return CRLF.join(line for section in sections for line in section) + CRLF


def offer_with_simulcast(offer_sdp: str, layers: dict[str, list[str]]) -> str:
    """For our own simulcast senders (bots): adds `a=rid:X send` and `a=simulcast:send ...` lines,
    and drops the SSRC lines of those m-lines (simulcast streams are identified by rid)."""
    sections = sdp_sections(offer_sdp)
    for i, section in enumerate(sections[1:], start=1):
        mid = _mid(section)
        rids = layers.get(mid) if mid is not None else None
        if not rids:
            continue
        kept = [line for line in section if not line.startswith(("a=ssrc:", "a=ssrc-group:"))]
        kept.extend(f"a=rid:{rid} send" for rid in rids)
        kept.append("a=simulcast:send " + ";".join(rids))
        sections[i] = kept
    return CRLF.join(line for section in sections for line in section) + CRLF
