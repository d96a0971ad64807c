"""The server's signing secret: created once and kept in the data dir (mode 0600), or read from a file the
operator gives (`--token-secret-file`: several machines on one PostgreSQL share it)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from common.errors import InvalidConfig
from common.private_files import private_dir, private_file


def server_secret(data_dir: Path, secret_file: Path | None = None) -> bytes:
    """The configured secret file (64+ hex digits, 32+ bytes), else the data dir's own one."""
    if secret_file is None:
        return load_or_create_secret(data_dir)
    try:
        value = bytes.fromhex(secret_file.read_text().strip())
    except (OSError, ValueError) as exc:
        raise InvalidConfig(f"token secret file {secret_file}: {exc}", field="token_secret_file") from None
    if len(value) < 32:
        raise InvalidConfig("the token secret file must hold at least 64 hex digits (32 bytes)",
                            field="token_secret_file")
    return value


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
