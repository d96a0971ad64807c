"""The file vault: uploads streamed to disk under the data dir, named by their SHA-256."""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from aiohttp import BodyPartReader

from chat.errors import FileTooLarge, FileTypeMismatch, FileTypeRefused, QuotaExceeded
from chat.model import FileMeta, OrgSettings, new_id
from chat.sniff import (
    claim_conflicts,
    is_executable,
    is_jar,
    sanitize_name,
    sniff,
    type_allowed,
)
from common.private_files import private_dir

T = TypeVar("T")

CHUNK = 256 * 1024
SNIFF_BYTES = 4096


@dataclass
class _Sink:
    path: Path
    handle: BinaryIO
    digest: hashlib._Hash
    size: int = 0
    head: bytes = b""

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)
        self.digest.update(chunk)
        self.size += len(chunk)
        if len(self.head) < SNIFF_BYTES:
            self.head += chunk[: SNIFF_BYTES - len(self.head)]

    def finish(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()


@dataclass(frozen=True)
class Staged:
    """A checked upload still in the vault's tmp dir: `commit` files it by hash, `discard` drops it."""

    meta: FileMeta
    tmp: Path


class FileVault:
    """Blobs under root/<sha[:2]>/<sha>, shared by every record with that content. A blob is written
    (or touched, when it exists) before its record is stored, and removed only when no record points
    at it and it was not touched since that was checked, both under one lock file, so an upload of
    the same content racing the sweep never loses its blob (across worker processes too)."""

    def __init__(self, root: Path) -> None:
        self._root = root
        private_dir(root)
        private_dir(root / "tmp")

    def path_of(self, sha256: str) -> Path:
        return self._root / sha256[:2] / sha256

    async def receive(self, part: BodyPartReader, uploader: str, org: OrgSettings,
                      allowance: int | None = None) -> Staged:
        """Streams one multipart part to a tmp file and checks it; nothing is filed yet.

        `allowance`: bytes this part may still take of the uploader's quota (None: no quota)."""
        name = sanitize_name(part.filename)
        claimed = part.headers.get("Content-Type")
        tmp = self._root / "tmp" / secrets.token_hex(12)
        sink = _Sink(tmp, await asyncio.to_thread(tmp.open, "wb"), hashlib.sha256())
        kept = False
        try:
            while True:
                chunk = await part.read_chunk(CHUNK)
                if not chunk:
                    break
                size = sink.size + len(chunk)
                if allowance is not None and size > allowance and allowance < org.max_file_bytes:
                    raise QuotaExceeded("your upload quota for today is used up", remaining=max(allowance, 0))
                if size > org.max_file_bytes:
                    raise FileTooLarge(f"files may be at most {org.max_file_bytes} bytes",
                                       limit=org.max_file_bytes)
                await asyncio.to_thread(sink.write, chunk)
            await asyncio.to_thread(sink.finish)
            mime = sniff(sink.head)
            if is_executable(mime, name) or (mime == "application/zip" and await asyncio.to_thread(is_jar, tmp)):
                raise FileTypeRefused("executables and scripts are not accepted", name=name)
            conflict = claim_conflicts(mime, name, claimed)
            if conflict:
                raise FileTypeMismatch(conflict, detected=mime)
            if not type_allowed(mime, org.allowed_file_types):
                raise FileTypeRefused(f"{mime} files are not allowed here", detected=mime)
            kept = True
        finally:
            if not sink.handle.closed:
                sink.handle.close()
            if not kept:
                tmp.unlink(missing_ok=True)
        meta = FileMeta(id=new_id("f_"), sha256=sink.digest.hexdigest(), name=name, mime=mime, size=sink.size,
                        uploader=uploader, created_at=time.time())
        return Staged(meta, tmp)

    async def commit(self, staged: Staged) -> None:
        """Files a staged upload by its hash (before its record is stored: see the class comment)."""
        await asyncio.to_thread(self._locked, self._file_away, staged.tmp, staged.meta.sha256)

    async def adopt(self, source: Callable[[], BinaryIO], sha256: str | None = None) -> tuple[str, int, bytes]:
        """Files the bytes `source()` opens (an import's blob), by their hash; returns (sha256, size, first
        bytes for sniffing). With `sha256` given, content that does not hash to it is refused (ValueError) and
        nothing is filed."""
        tmp = self._root / "tmp" / secrets.token_hex(12)

        def copy() -> _Sink:
            with source() as src:
                sink = _Sink(tmp, tmp.open("wb"), hashlib.sha256())
                try:
                    while chunk := src.read(CHUNK):
                        sink.write(chunk)
                    sink.finish()
                finally:
                    sink.handle.close()
            return sink

        try:
            sink = await asyncio.to_thread(copy)
            digest = sink.digest.hexdigest()
            if sha256 is not None and digest != sha256:
                raise ValueError(f"content hashes to {digest}, not {sha256}")
            await asyncio.to_thread(self._locked, self._file_away, tmp, digest)
        finally:
            await asyncio.to_thread(tmp.unlink, True)  # gone already when filed
        return digest, sink.size, sink.head

    async def discard(self, staged: Staged) -> None:
        await asyncio.to_thread(staged.tmp.unlink, True)

    async def remove_blob(self, sha256: str, unused_since: float) -> bool:
        """Deletes the blob unless it was written or touched since `unused_since` (when the caller saw
        no record using it); True if deleted."""
        return await asyncio.to_thread(self._locked, self._remove_blob, sha256, unused_since)

    async def sweep_tmp(self, before: float) -> int:
        """Deletes upload tmp files older than `before` (left by a crash mid-upload)."""
        return await asyncio.to_thread(self._sweep_tmp, before)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        fd = os.open(self._root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return fn(*args)
        finally:
            os.close(fd)  # releases the lock

    def _file_away(self, tmp: Path, sha: str) -> None:
        dest = self.path_of(sha)
        private_dir(dest.parent)
        if dest.exists():
            os.utime(dest)  # in use again: a sweep that decided before this must not remove it
            tmp.unlink(missing_ok=True)
            return
        os.chmod(tmp, 0o600)  # uploads are the server user's alone, like the rest of the data dir
        os.replace(tmp, dest)
        os.utime(dest)
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _remove_blob(self, sha: str, unused_since: float) -> bool:
        path = self.path_of(sha)
        try:
            if path.stat().st_mtime >= unused_since - 1.0:  # 1 s: clock granularity margin
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def _sweep_tmp(self, before: float) -> int:
        removed = 0
        for entry in (self._root / "tmp").iterdir():
            try:
                if entry.stat().st_mtime < before:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed
