"""Data dir permissions: the server's files are readable by its own user only.

The data dir holds the signing secret, API key hashes, chat, transcripts and the workers' pipe
addresses; any local account that could read them could mint tokens or eavesdrop on meetings. So every
directory the server creates there is 0700 and every file 0600, set when it is created (not left to the
umask) and tightened again when an existing one is opened.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: Path) -> Path:
    """Creates `path` and any missing parents as 0700; an existing `path` is tightened to 0700.

    Parents that already exist are left alone (they may be the user's home or /tmp)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another worker process made it first
            pass
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask; chmod is not
    return path


def private_file(path: Path) -> Path:
    """Creates `path` empty as 0600 if missing, else tightens it to 0600; contents are never touched."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:  # there already, or another worker process made it first
        pass
    else:
        os.close(fd)
    os.chmod(path, FILE_MODE)  # O_CREAT's mode is filtered by the umask; chmod is not
    return path


def private_sqlite(path: Path) -> Path:
    """Makes a SQLite database file private before SQLite opens it.

    SQLite creates its -wal, -shm and -journal files with the database file's mode, so an existing
    0600 database keeps them 0600 too; side files left by an older run are tightened here."""
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, FILE_MODE)
    return path
