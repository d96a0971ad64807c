"""CPU per subscriber answer parsed: `python -m loadtest.sdp_parse [--people 28] [--answers 150] [--rounds 3]`.

The server parses every answer its subscribers send. A newcomer to a big meeting answers an offer of `--people`
slot pairs (a voice and a camera each), the same slots as everyone's, in its own connection's values (port,
address, ICE credentials, DTLS fingerprint). Real aiortc peers answer a real `Subscriber` offer the way the load
bots do (`compact_answer`); each answer is then parsed, in one run, by aiortc's own parse, by the section cache
as it was before #14's stop 23 (sections known by their lines under the session's context only, so a new
connection's miss every time) and by `parse_by_sections`: as a new connection's, and the same text again right
after (a renegotiation repeats every m-line). Prints the process CPU per answer, medians over the rounds; GC is off
while timing, so a collection does not land in one path's figures.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from aiortc import sdp

from loadtest.peers import PacketSubscriberPeer
from loadtest.sdp import compact_answer
from loadtest.tables import table
from sfu.aiortc_seams import _aiortc_sdp_parse, _copy_media, _INHERITED, parse_by_sections
from sfu.webrtc import Subscriber, configure_ice


def context_only_parser() -> Callable[[str], sdp.SessionDescription]:
    """The section cache before stop 23, for comparison: a section is known only under the same session context."""
    cache: dict[str, sdp.MediaDescription] = {}

    def parse(text: str) -> sdp.SessionDescription:
        session_lines, media_groups = sdp.grouplines(text)
        session_text = "\r\n".join(session_lines) + "\r\n"
        description = _aiortc_sdp_parse(session_text)
        context = "\n".join(line for line in session_lines if line.startswith(_INHERITED))
        for lines in media_groups:
            key = context + "\n\n" + "\n".join(lines)
            cached = cache.get(key)
            if cached is None:
                media = _aiortc_sdp_parse(session_text + "\r\n".join(lines) + "\r\n").media[0]
                cache[key] = _copy_media(media)
            else:
                media = _copy_media(cached)
            description.media.append(media)
        return description

    return parse


async def answers(people: int, count: int) -> list[str]:
    """`count` answers of as many new subscriber connections to one offer of `people` slot pairs."""
    configure_ice(include_loopback=True)
    server = Subscriber([], lambda: None)
    try:
        server.expect(people)
        offer, _ = await server.create_offer()
        out = []
        for _ in range(count):
            client = PacketSubscriberPeer(lambda mid, packet: None)
            out.append(compact_answer(await client.answer(offer)))
            await client.close()
        return out
    finally:
        await server.close()


def cpu_per_answer(parse: Callable[[str], Any], texts: list[str], again: bool = False) -> float:
    """Milliseconds of process CPU per answer (`again`: of each parsed a second time, right after the first)."""
    spent = 0.0
    for text in texts:
        if again:
            parse(text)
        started = time.process_time()
        parse(text)
        spent += time.process_time() - started
    return spent / len(texts) * 1000


def measure(people: int, count: int, rounds: int) -> tuple[int, list[list[str]]]:
    sets = [asyncio.run(answers(people, count)) for _ in range(rounds)]
    figures: dict[str, list[float]] = {"aiortc's parse": [], "before stop 23, a new connection": [],
                                       "parse_by_sections, a new connection": [], "parse_by_sections, again": []}
    gc.disable()
    try:
        for texts in sets:
            figures["aiortc's parse"].append(cpu_per_answer(_aiortc_sdp_parse, texts))
            figures["before stop 23, a new connection"].append(cpu_per_answer(context_only_parser(), texts))
            figures["parse_by_sections, a new connection"].append(cpu_per_answer(parse_by_sections, texts))
            figures["parse_by_sections, again"].append(cpu_per_answer(parse_by_sections, texts[:40], again=True))
    finally:
        gc.enable()
    base = statistics.median(figures["aiortc's parse"])
    rows = [[name, f"{statistics.median(f):.3f}", f"{statistics.median(f) / base:.2f}"] for name, f in figures.items()]
    return sets[0][0].count("\nm="), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=28, help="slot pairs in the offer (25 cameras and 3 voices)")
    parser.add_argument("--answers", type=int, default=150, help="answers (connections) per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    m_lines, rows = measure(args.people, args.answers, args.rounds)
    print(f"{m_lines} m-lines per answer")
    print(table(["parse", "ms CPU per answer", "÷ aiortc's"], rows))


if __name__ == "__main__":
    main()
