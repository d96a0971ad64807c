"""Shared pieces of the Git receivers' posts: Markdown links with safe labels, commit lists, first lines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_COMMITS = 5
MAX_BODY_CHARS = 300


def s(obj: Any, *path: str) -> str:
    """The string at `obj[path[0]][path[1]]…`, or "" when any step is missing or not what it should be."""
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj if isinstance(obj, str) else ""


def obj(parent: Any, key: str) -> dict[str, Any]:
    """`parent[key]` when both are objects, else {} (a payload of another shape renders less, never crashes)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return value if isinstance(value, dict) else {}


def objs(parent: Any, key: str) -> list[dict[str, Any]]:
    """The objects in the list `parent[key]` (nothing when it is not a list)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def label(text: str) -> str:
    """Text for inside `[…]`: brackets and newlines would end or break the link."""
    return " ".join(text.replace("[", "(").replace("]", ")").split())


def link(text: str, url: str) -> str:
    return f"[{label(text)}]({url})" if url.startswith(("https://", "http://")) else label(text)


def first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def excerpt(text: str) -> str:
    """The start of an issue's or request's description, as a quote."""
    body = text.strip()
    if not body:
        return ""
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS].rstrip() + "…"
    return "\n".join(f"> {line}" for line in body.splitlines())


def commit_lines(commits: list[dict[str, str]], total: int) -> list[str]:
    """`- [abc1234](url) message — author` for the first few commits, then how many more."""
    lines = [f"- {link(c['id'][:7], c['url'])} {label(first_line(c['message']))} — {label(c['author'])}"
             for c in commits[:MAX_COMMITS]]
    if total > len(lines):
        lines.append(f"- … and {total - len(lines)} more")
    return lines


def branch_of(ref: str) -> tuple[str, str]:
    """`refs/heads/main` -> ("branch", "main"); `refs/tags/v1` -> ("tag", "v1")."""
    if ref.startswith("refs/tags/"):
        return "tag", ref[len("refs/tags/"):]
    return "branch", ref.removeprefix("refs/heads/")


@dataclass(frozen=True)
class Change:
    """A pull or merge request, or an issue, as either host describes it."""

    who: str  # already formatted (bold)
    action: str  # opened, closed, merged, reopened, ready for review
    noun: str  # "pull request", "merge request", "issue"
    title: str  # already a link
    repo: str  # already a link
    body: str = ""
    source: str = ""  # a request's branches
    target: str = ""


def change_post(c: Change) -> str:
    """`**who** opened pull request [#12 Title](url) in [org/repo](url) (`from` → `to`)` and, when opened, the start
    of its description as a quote."""
    line = f"{c.who} {c.action} {c.noun} {c.title} in {c.repo}"
    if c.action != "opened":
        return line
    if c.source or c.target:
        line += f" (`{label(c.source)}` → `{label(c.target)}`)"
    return "\n".join(p for p in (line, excerpt(c.body)) if p)
