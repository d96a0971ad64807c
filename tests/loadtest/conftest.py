"""Load-test fixtures: pre-encoded media shared by the session (encoding it takes a few seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtest.media import MediaLibrary


@pytest.fixture(scope="session")
def media_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("loadtest-media")
    MediaLibrary.load_or_build(cache, "360p")
    return cache
