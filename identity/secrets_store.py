"""The server's signing secret, created once and kept in the data dir (mode 0600)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from common.private_files import private_dir, private_file


def load_or_create_secret(data_dir: Path, name: str = "token_secret") -> bytes:
    private_dir(data_dir)
    path = data_dir / name
    if path.exists():
        private_file(path)  # tightens one left readable by an older version
        return bytes.fromhex(path.read_text().strip())
    value = secrets.token_bytes(32)
    # O_EXCL: two processes starting at once agree on one secret.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as f:
        f.write(value.hex())
    return value
