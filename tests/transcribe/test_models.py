"""Where models come from: the default (Whisper base) is joined once from its two pinned wheels into a cache;
a part that does not match its pinned hash is refused and nothing is left behind; tiny.en stays available."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from transcribe import models
from transcribe.engine import AsrEngine
from transcribe.settings import AsrSettings


def _parts(tmp_path: Path, contents: list[bytes]) -> list[tuple[Path, str]]:
    out = []
    for i, data in enumerate(contents):
        path = tmp_path / f"model.bin.part{i + 1}"
        path.write_bytes(data)
        out.append((path, hashlib.sha256(data).hexdigest()))
    return out


def test_parts_are_verified_then_joined_once_into_the_cache(tmp_path: Path) -> None:
    parts = _parts(tmp_path, [b"first half|", b"second half"])
    extra = tmp_path / "config.json"
    extra.write_text("{}")
    target = tmp_path / "cache" / "model"
    assert models.join_model(parts, [extra], target) == target
    assert (target / "model.bin").read_bytes() == b"first half|second half"
    assert (target / "config.json").read_text() == "{}"
    assert [p.name for p in target.parent.iterdir()] == ["model"]  # no temporary directory left
    # Once joined, it is reused as it is (the parts are not read again).
    parts[0][0].unlink()
    assert models.join_model(parts, [extra], target) == target


def test_a_part_that_does_not_match_its_hash_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    parts = _parts(tmp_path, [b"first half|", b"second half"])
    parts[1][0].write_bytes(b"second half, tampered")
    target = tmp_path / "cache" / "model"
    with pytest.raises(models.ModelFileError, match="sha256"):
        models.join_model(parts, [], target)
    assert not target.exists() and not any((tmp_path / "cache").glob("*"))
    with pytest.raises(models.ModelFileError, match="missing"):
        models.join_model([(tmp_path / "nowhere", "0" * 64)], [], target)


def test_the_default_is_multilingual_base_and_tiny_en_stays_for_small_machines(base_engine: AsrEngine,
                                                                             engine: AsrEngine) -> None:
    default = AsrSettings()
    assert default.model_name == "base" and default.multilingual and default.model_is_local()
    joined = Path(default.model_path())
    assert joined.name == models.BASE_DIR_NAME and (joined / "model.bin").stat().st_size == 145_217_532
    assert {p.name for p in joined.iterdir()} == {"model.bin", "config.json", "tokenizer.json", "vocabulary.txt"}
    tiny = AsrSettings(model="tiny.en")
    assert not tiny.multilingual and Path(tiny.model_path()) == models.bundled_tiny_en()
    # Loaded: base knows Chinese; tiny.en writes English whatever a room asks for.
    assert base_engine.language_of("zh") == "zh" and engine.language_of("zh") == "en"


def test_a_missing_home_falls_back_to_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "unwritable"))
    (tmp_path / "unwritable").write_text("a file, not a directory")
    path = Path(models.resolve_model(None, tmp_path / "data" / "models"))
    assert path.parent == tmp_path / "data" / "models" and (path / "model.bin").is_file()
