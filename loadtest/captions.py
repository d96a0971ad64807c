"""Caption benchmark: recorded speech played in real time through the Opus tap into the streaming path.

    python -m loadtest.captions [--models tiny.en,base] [--speakers 1,2,4] [--no-chinese]

For each model, and N speakers talking at the same time (each their own voice and text, 20 ms Opus packets
written at the real-time pace), it prints: final-caption latency (the end of a word in the audio → the final
caption that contains it; word ends come from an offline transcription of the same clip) p50/p95, WER of the
live captions against the script (mean, and per voice) next to the WER of an offline transcription of the same
audio, process CPU seconds per audio second (per speaker: the budget is 0.25), and whether the engine kept up
(live: p95 < 3.5 s and no growing lag). Multilingual models also caption one Mandarin speaker in a `zh` stream
(CER). Speech is made offline with espeak-ng and flite (Mandarin: espeak-ng from pinyin).
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from tests.transcribe.opus_rtp import opus_rtp_packets  # noqa: E402
from tests.transcribe.speech import SpeechClip, make_speech_wav  # noqa: E402
from transcribe.caption import Caption, Word  # noqa: E402
from transcribe.engine import AsrEngine  # noqa: E402
from transcribe.opus_tap import OpusAudioTap  # noqa: E402
from transcribe.resample import Resampler  # noqa: E402
from transcribe.settings import AsrSettings  # noqa: E402
from transcribe.stream import SpeakerStream  # noqa: E402
from transcribe.wer import character_error_rate, characters_of, word_error_rate, words_of  # noqa: E402

SCRIPTS = [
    ("espeak", "Good morning everyone. Thanks for joining the weekly planning meeting. First, the budget for the "
               "third quarter is approved. Carol will update the website by Friday. I will prepare the slides for "
               "the customer review, and then we can talk about hiring for the support team."),
    ("flite", "We decided to move the launch to next month. Bob will write the test plan before the release. "
              "The new dashboard shows the number of active users for every region, and the sales team "
              "wants a weekly report that they can share with their partners."),
    ("flite-awb", "The server room will be closed on Monday for maintenance. Please save your work before you "
                  "leave on Friday evening. If something breaks over the weekend, call the person on duty and "
                  "write a short note in the incident channel."),
    ("espeak-gb", "Our customers asked for a simpler way to export their data. The design team made three "
                  "proposals, and we will test them with ten users next week. The results will decide which "
                  "version we build for the summer release."),
]

# Mandarin (espeak-ng reads pinyin with tone numbers; the reference is the characters).
ZH_SCRIPT = ("espeak-zh",
             "da4 jia1 hao3, wo3 men5 kai1 shi3 jin1 tian1 de5 hui4 yi4. zhe4 ge4 xing1 qi1 wo3 men5 xu1 yao4 wan2 "
             "cheng2 xin1 de5 wang3 zhan4. qing3 ni3 zai4 zhou1 wu3 zhi1 qian2 ba3 bao4 gao4 fa1 gei3 wo3. wo3 men5 "
             "jue2 ding4 ba3 fa1 bu4 tui1 chi2 dao4 xia4 ge4 yue4. zhang1 san1 fu4 ze2 ce4 shi4 ji4 hua4, yue4 di3 "
             "zhi1 qian2 wan2 cheng2.",
             "大家好，我们开始今天的会议。这个星期我们需要完成新的网站。请你在周五之前把报告发给我。我们决定把发布推迟到"
             "下个月。张三负责测试计划，月底之前完成。")
BUDGET = 0.25  # CPU-s per audio-s per active speaker


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Speaker:
    clip: SpeechClip
    voice: str
    offline_words: list[Word]  # word times on the clip's timeline, from one offline pass
    offline_text: str
    reference: str  # what was said (the clip's text is pinyin for Mandarin)
    language: str = "en"

    def units(self, text: str) -> list[str]:
        """What errors are counted on: words, or characters for Chinese."""
        return characters_of(text) if self.language == "zh" else words_of(text)

    def error_rate(self, text: str) -> float:
        return (character_error_rate if self.language == "zh" else word_error_rate)(self.reference, text)


@dataclass
class RunResult:
    model: str
    speakers: int
    latencies: list[float]
    wer_live: float
    wer_offline: float
    cpu_per_audio_second: float
    max_lag: float
    merged: int
    dropped: float
    per_voice: dict[str, float]
    language: str = "en"


def prepare(directory: Path, count: int, engine: AsrEngine, zh: bool = False) -> list[Speaker]:
    from transcribe.recognizer import Recognizer

    recognizer = Recognizer(engine.settings)
    out = []
    scripts = [(ZH_SCRIPT[0], ZH_SCRIPT[1])] if zh else [SCRIPTS[i % len(SCRIPTS)] for i in range(count)]
    for i, (voice, text) in enumerate(scripts):
        clip = make_speech_wav(text, voice, directory / f"speaker{i}-{'zh' if zh else 'en'}.wav", lead_silence=0.5,
                               tail_silence=1.5, rate=48000)
        audio16 = Resampler().pcm(clip.samples, clip.sample_rate)
        language = "zh" if zh else "en"
        result = recognizer.recognize(audio16[: 16000 * 29], "", language)
        out.append(Speaker(clip, voice, result.words, result.text, ZH_SCRIPT[2] if zh else text, language))
    return out


def word_latencies(captions: list[tuple[float, Caption]], speaker: Speaker, t0: float) -> list[float]:
    """Matches the live final words to the offline words; latency = caption time − word end in the audio."""
    live: list[tuple[str, float]] = []
    for at, c in captions:
        if c.final and c.text:
            live.extend((w, at) for w in speaker.units(c.text))
    offline = [(w, word.end) for word in speaker.offline_words for w in speaker.units(word.text)]
    matcher = difflib.SequenceMatcher(a=[w for w, _ in live], b=[w for w, _ in offline], autojunk=False)
    out = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            emitted = live[block.a + k][1]
            word_end = offline[block.b + k][1]
            out.append(emitted - (t0 + word_end))
    return out


async def run(speakers: list[Speaker], engine: AsrEngine) -> RunResult:
    per_speaker: list[list[tuple[float, Caption]]] = [[] for _ in speakers]
    taps = []
    for i, _ in enumerate(speakers):
        sink = per_speaker[i]
        stream = SpeakerStream(engine, f"bench{len(speakers)}-{speakers[i].language}-{i}", f"PA_{i}", f"Speaker {i}",
                               lambda c, sink=sink: sink.append((time.monotonic(), c)), language=speakers[i].language)
        taps.append(OpusAudioTap(stream, flush_interval=0.1))
    packet_lists = [opus_rtp_packets(s.clip.samples, ssrc=100 + i) for i, s in enumerate(speakers)]
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic() + 0.05
    max_lag = 0.0
    n_packets = max(len(p) for p in packet_lists)
    for k in range(n_packets):  # 20 ms apart, on the wall clock
        delay = t0 + k * 0.02 - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        for tap, packets in zip(taps, packet_lists):
            if k < len(packets):
                tap.write_rtp(packets[k])
        if k % 50 == 0:
            max_lag = max(max_lag, float(engine.snapshot()["max_lag_seconds"]))
    snapshot = engine.snapshot()
    for tap in taps:
        await tap.aclose()
    usage1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    audio_seconds = sum(s.clip.duration for s in speakers)
    latencies: list[float] = []
    live_wers, offline_wers = [], []
    per_voice: dict[str, float] = {}
    for sp, caps in zip(speakers, per_speaker):
        latencies += word_latencies(caps, sp, t0)
        live_text = " ".join(c.text for _, c in caps if c.final and c.text)
        live_wers.append(sp.error_rate(live_text))
        per_voice[sp.voice] = live_wers[-1]
        offline_wers.append(sp.error_rate(sp.offline_text))
    return RunResult(
        model=engine.settings.model_name,
        language=speakers[0].language,
        per_voice=per_voice,
        speakers=len(speakers),
        latencies=latencies,
        wer_live=float(np.mean(live_wers)),
        wer_offline=float(np.mean(offline_wers)),
        cpu_per_audio_second=cpu / audio_seconds,
        max_lag=max_lag,
        merged=int(snapshot["merged_chunks"]),
        dropped=float(snapshot["dropped_seconds"]),
    )


async def bench_model(model: str, counts: list[int], workers: int, chinese: bool) -> list[RunResult]:
    engine = AsrEngine(AsrSettings(model=model, workers=workers))
    await engine.ensure_loaded()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = [(n, False) for n in counts]
        if chinese and engine.settings.multilingual:
            runs.append((1, True))
        english = prepare(Path(tmp), max(counts), engine)
        for n, zh in runs:
            speakers = prepare(Path(tmp), 1, engine, zh=True) if zh else english[:n]
            base = engine.snapshot()
            result = await run(speakers, engine)
            result.merged -= int(base["merged_chunks"])
            result.dropped -= float(base["dropped_seconds"])
            results.append(result)
            print_result(result)
    engine.shutdown()
    return results


async def main_async(counts: list[int], workers: int, models: list[str] | None = None,
                     chinese: bool = True) -> list[RunResult]:
    results = []
    for model in models or ["base"]:
        results += await bench_model(model, counts, workers, chinese)
    print_summary(results)
    return results


def print_result(r: RunResult) -> None:
    live = percentile(r.latencies, 0.95) < 3.5 and r.max_lag < 3.0
    rate = "CER" if r.language == "zh" else "WER"
    voices = " ".join(f"{v}={e * 100:.1f}%" for v, e in r.per_voice.items())
    print(
        f"model={r.model} lang={r.language} speakers={r.speakers}  latency p50={percentile(r.latencies, 0.5):.2f}s"
        f" p95={percentile(r.latencies, 0.95):.2f}s (n={len(r.latencies)})  {rate} live={r.wer_live * 100:.1f}%"
        f" ({voices}) offline={r.wer_offline * 100:.1f}%  CPU/audio-s={r.cpu_per_audio_second:.3f}"
        f" ({'within' if r.cpu_per_audio_second <= BUDGET else 'OVER'} the {BUDGET} budget)  max lag={r.max_lag:.1f}s"
        f"  merged chunks={r.merged}  dropped={r.dropped:.1f}s  live={'yes' if live else 'no'}",
        flush=True,
    )


def print_summary(results: list[RunResult]) -> None:
    """A Markdown table of the whole run (for the README)."""
    print("\n| model | language | speakers at once | latency p50 / p95 | error rate live (offline) | per voice "
          "| CPU-s per audio-s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        voices = ", ".join(f"{v} {e * 100:.0f}%" for v, e in r.per_voice.items())
        print(f"| {r.model} | {r.language} | {r.speakers} | {percentile(r.latencies, 0.5):.2f} / "
              f"{percentile(r.latencies, 0.95):.2f} s | {'CER' if r.language == 'zh' else 'WER'} "
              f"{r.wer_live * 100:.1f}% ({r.wer_offline * 100:.1f}%) | {voices} | {r.cpu_per_audio_second:.3f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest.captions", description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny.en,base", help="comma-separated models (tiny.en, base, a path)")
    parser.add_argument("--speakers", default="1,2,4", help="comma-separated simultaneous speaker counts")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="inference pool size")
    parser.add_argument("--no-chinese", action="store_true", help="skip the Mandarin (CER) run")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.speakers.split(",") if x]
    models = [m for m in args.models.split(",") if m]
    print(f"cores={os.cpu_count()} workers={args.workers} models={','.join(models)} int8, 1 thread per inference",
          flush=True)
    asyncio.run(main_async(counts, args.workers, models, chinese=not args.no_chinese))
    return 0


if __name__ == "__main__":
    sys.exit(main())
