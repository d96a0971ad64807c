"""Names people give themselves are one line of text.

A name ends up in places with line structure: WebVTT/SRT cues, Markdown notes, plain-text transcripts,
chat tasks. A newline (or a Unicode line separator) in a name could start a heading, a cue or a list item
there; a bidi override could make a name read as someone else's. `display_name` refuses such names where
they enter (token minting, guest join, chat users); `one_line` is the second line of defence for names
that were stored or signed before the check existed, applied where text is rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from common.errors import InvalidField

# C0 controls (incl. \t \n \r), DEL, C1 controls (U+0085 NEL is a line break to some readers),
# the Unicode line/paragraph separators, and the bidi embeddings, overrides and isolates.
_UNSAFE = "\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
UNSAFE_CHARS = re.compile(f"[{_UNSAFE}]")
_UNSAFE_RUN = re.compile(f"[{_UNSAFE}]+")


def display_name(value: object, field: str = "name", max_len: int = 128) -> str:
    """`value` as a one-line display name: a string, stripped, 1..max_len characters, with no
    control characters, line separators or bidi controls (else InvalidField for `field`)."""
    if not isinstance(value, str):
        raise InvalidField(f"{field} must be a string", field=field)
    if UNSAFE_CHARS.search(value):
        raise InvalidField(f"{field} must be one line without control characters", field=field)
    name = value.strip()
    if not 1 <= len(name) <= max_len:
        raise InvalidField(f"{field} must be 1-{max_len} characters", field=field)
    return name


def one_line(text: str) -> str:
    """`text` with every run of control characters, line breaks and bidi controls made one space."""
    return _UNSAFE_RUN.sub(" ", text)


def department_parts(path: str, clean: Callable[[str], str] | None = None) -> list[str]:
    """A department path's parts, outermost first, empty ones dropped; each passed through `clean` first where the
    path comes from outside (a directory attribute, a sign-in claim): `研发部 / 前端组/` with `str.strip` ->
    ["研发部", "前端组"]. A stored path is already clean (chat/service.py's DEPARTMENT): no `clean` for it."""
    parts = path.split("/")
    return [part for part in (map(clean, parts) if clean is not None else parts) if part]


def department_path(path: str, clean: Callable[[str], str] = str.strip) -> str:
    """A department path from outside as we store it: `研发部 / 前端组/` -> `研发部/前端组`."""
    return "/".join(department_parts(path, clean))


def department_ancestors(paths: Iterable[str | None]) -> set[str]:
    """Every department that stored `paths` name, with all its parents: ["a/b/c"] -> {"a", "a/b", "a/b/c"}."""
    every: set[str] = set()
    for path in paths:
        parts = path.split("/") if path else []
        every.update("/".join(parts[:depth]) for depth in range(1, len(parts) + 1))
    return every


# Logins the server makes for its own bots: webhooks' (hook-<id>; hook_ kept for older ones) and slash commands'
# (cmd_<trigger>). Nobody else gets one: not a bot an admin makes, nor a person a directory or provider names.
RESERVED_LOGIN_PREFIXES = ("hook-", "hook_", "cmd_")


def server_reserved(login: str) -> bool:
    """Whether `login` is in the server's own bots' name space (case aside: "CMD_x" would pass for one)."""
    return login.lower().startswith(RESERVED_LOGIN_PREFIXES)
