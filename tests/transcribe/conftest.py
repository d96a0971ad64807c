"""Caption engines per test session (each model loads once, and servers started by tests share the loaded
model: transcribe.recognizer.shared_model); speech made offline at test time.

`engine` is tiny.en on purpose: the streaming-mechanics tests (interims, trimming, overload, rooms) were
calibrated on it and run twice as fast; `base_engine` is the default model, for language and accuracy tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.transcribe.speech import SpeechClip, make_speech_wav, tts_available  # noqa: E402
from transcribe.engine import AsrEngine  # noqa: E402
from transcribe.settings import AsrSettings  # noqa: E402

ALICE_TEXT = (
    "Good morning everyone. Thanks for joining the weekly planning meeting. "
    "First, the budget for the third quarter is approved. "
    "Carol will update the website by Friday. I will prepare the slides for the customer review."
)
BOB_TEXT = (
    "Thanks. We decided to move the launch to next month. "
    "Bob will write the test plan before the release, and then we meet again."
)


@pytest.fixture(scope="session")
def engine() -> Iterator[AsrEngine]:
    eng = AsrEngine(AsrSettings(model="tiny.en", workers=2))
    eng.load()
    yield eng
    eng.shutdown()


@pytest.fixture(scope="session")
def base_engine() -> Iterator[AsrEngine]:
    """The default model (multilingual Whisper base), in rooms of any language."""
    eng = AsrEngine(AsrSettings(workers=2))
    eng.load()
    yield eng
    eng.shutdown()


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (tts_available("espeak") and tts_available("flite")):
        pytest.skip("espeak-ng and flite are needed to make test speech")
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def alice_clip(speech_dir: Path) -> SpeechClip:
    return make_speech_wav(ALICE_TEXT, "espeak", speech_dir / "alice.wav", lead_silence=1.0, rate=48000)


@pytest.fixture(scope="session")
def bob_clip(speech_dir: Path) -> SpeechClip:
    return make_speech_wav(BOB_TEXT, "flite", speech_dir / "bob.wav", lead_silence=0.5, rate=48000)
