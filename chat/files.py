"""The file vault: uploads streamed to disk under the data dir, named by their SHA-256."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from aiohttp import BodyPartReader

from chat.errors import FileTooLarge, FileTypeMismatch, FileTypeRefused
from chat.model import FileMeta, OrgSettings, new_id
from chat.sniff import (
    claim_conflicts,
    is_executable,
    sanitize_name,
    sniff,
    type_allowed,
)
from common.private_files import private_dir

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


class FileVault:
    def __init__(self, root: Path) -> None:
        self._root = root
        private_dir(root)
        private_dir(root / "tmp")

    def path_of(self, sha256: str) -> Path:
        return self._root / sha256[:2] / sha256

    async def receive(self, part: BodyPartReader, uploader: str, org: OrgSettings) -> FileMeta:
        """Streams one multipart part to disk, checks it, and files it by content hash."""
        name = sanitize_name(part.filename)
        claimed = part.headers.get("Content-Type")
        tmp = self._root / "tmp" / secrets.token_hex(12)
        sink = _Sink(tmp, await asyncio.to_thread(tmp.open, "wb"), hashlib.sha256())
        try:
            while True:
                chunk = await part.read_chunk(CHUNK)
                if not chunk:
                    break
                if sink.size + len(chunk) > org.max_file_bytes:
                    raise FileTooLarge(f"files may be at most {org.max_file_bytes} bytes",
                                       limit=org.max_file_bytes)
                await asyncio.to_thread(sink.write, chunk)
            await asyncio.to_thread(sink.finish)
            mime = sniff(sink.head)
            if is_executable(mime, name):
                raise FileTypeRefused("executables are not accepted", name=name)
            conflict = claim_conflicts(mime, name, claimed)
            if conflict:
                raise FileTypeMismatch(conflict, detected=mime)
            if not type_allowed(mime, org.allowed_file_types):
                raise FileTypeRefused(f"{mime} files are not allowed here", detected=mime)
            sha = sink.digest.hexdigest()
            await asyncio.to_thread(self._file_away, tmp, sha)
        finally:
            if not sink.handle.closed:
                sink.handle.close()
            tmp.unlink(missing_ok=True)
        return FileMeta(id=new_id("f_"), sha256=sha, name=name, mime=mime, size=sink.size, uploader=uploader,
                        created_at=time.time())

    def _file_away(self, tmp: Path, sha: str) -> None:
        dest = self.path_of(sha)
        private_dir(dest.parent)
        if dest.exists():
            return
        os.chmod(tmp, 0o600)  # uploads are the server user's alone, like the rest of the data dir
        os.replace(tmp, dest)
        fd = os.open(dest.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
