"""Chat values: users, channels, messages (text, task, file), files and org settings.

Every value is a dataclass with `to_wire()` (the JSON the API shows) and, where it is stored as JSON,
`from_wire()`. Times are Unix seconds (floats) in storage and ISO-8601 strings nowhere but the API docs.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

ROLES = ("owner", "admin", "member", "guest", "bot")
CHANNEL_KINDS = ("meeting", "team", "group", "direct")
MESSAGE_TYPES = ("text", "task", "file")
TASK_STATUSES = ("open", "in_progress", "done")
# Where the viewer's identity is drawn over content (docs/watermark.md): nowhere, over important messages (and the
# meeting stage), or over everything.
WATERMARK_MODES = ("off", "important", "all")


def new_id(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(8)}"


def _str(d: dict[str, Any], key: str, default: str = "") -> str:
    v = d.get(key, default)
    return v if isinstance(v, str) else default


def _opt_str(d: dict[str, Any], key: str) -> str | None:
    v = d.get(key)
    return v if isinstance(v, str) else None


def _float(d: dict[str, Any], key: str, default: float = 0.0) -> float:
    v = d.get(key, default)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else default


def _opt_float(d: dict[str, Any], key: str) -> float | None:
    v = d.get(key)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


@dataclass(frozen=True)
class User:
    login: str
    role: str = "member"
    name: str = ""
    department: str = ""  # a path in the department tree, e.g. "engineering/media"
    created_at: float = 0.0
    email: str = ""  # kept by the directory sync (chat/directory_sync.py); "" for local users until set
    title: str = ""
    source: str = "local"  # "ldap": made and kept by the directory sync
    org: str = "default"  # the organisation (identity/orgs.py); fixed when the user is made

    def to_wire(self) -> dict[str, Any]:
        return {"login": self.login, "role": self.role, "name": self.name or self.login,
                "department": self.department, "created_at": self.created_at, "email": self.email,
                "title": self.title, "source": self.source}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> User:
        return cls(login=_str(d, "login"), role=_str(d, "role", "member"), name=_str(d, "name"),
                   department=_str(d, "department"), created_at=_float(d, "created_at"))


@dataclass(frozen=True)
class OrgSettings:
    """What the organisation configures (admins change it with PATCH /v1/org)."""

    members_create_channels: bool = True
    recall_window_seconds: int = 600
    max_file_bytes: int = 100 * 1024 * 1024
    # MIME types (or "image/*"-style families) allowed for uploads; empty allows all but executables.
    allowed_file_types: tuple[str, ...] = ()
    retention_days: int = 183
    remind_before_seconds: int = 3600
    watermark: str = "off"  # WATERMARK_MODES; a channel's own setting replaces it there

    def to_wire(self) -> dict[str, Any]:
        return {"members_create_channels": self.members_create_channels,
                "recall_window_seconds": self.recall_window_seconds,
                "max_file_bytes": self.max_file_bytes,
                "allowed_file_types": list(self.allowed_file_types),
                "retention_days": self.retention_days,
                "remind_before_seconds": self.remind_before_seconds, "watermark": self.watermark}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> OrgSettings:
        base = cls()
        types = d.get("allowed_file_types", [])
        return cls(
            members_create_channels=bool(d.get("members_create_channels", base.members_create_channels)),
            recall_window_seconds=int(d.get("recall_window_seconds", base.recall_window_seconds)),
            max_file_bytes=int(d.get("max_file_bytes", base.max_file_bytes)),
            allowed_file_types=tuple(str(t) for t in types) if isinstance(types, list) else (),
            retention_days=int(d.get("retention_days", base.retention_days)),
            remind_before_seconds=int(d.get("remind_before_seconds", base.remind_before_seconds)),
            watermark=d["watermark"] if d.get("watermark") in WATERMARK_MODES else base.watermark,
        )


@dataclass(frozen=True)
class Channel:
    id: str
    name: str
    kind: str
    created_by: str = ""
    created_at: float = 0.0
    topic: str = ""
    retention_days: int | None = None  # None: the org's policy
    watermark: str | None = None  # WATERMARK_MODES; None: the org's setting
    archived_at: float | None = None  # archived (read-only) since; None: open
    org: str = "default"  # its organisation; `name` is the plain name, unique within it

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "created_by": self.created_by,
                "created_at": self.created_at, "topic": self.topic, "retention_days": self.retention_days,
                "watermark": self.watermark, "archived": self.archived_at is not None,
                "archived_at": self.archived_at}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Channel:
        rd = d.get("retention_days")
        return cls(id=_str(d, "id"), name=_str(d, "name"), kind=_str(d, "kind", "team"),
                   created_by=_str(d, "created_by"), created_at=_float(d, "created_at"),
                   topic=_str(d, "topic"), retention_days=rd if isinstance(rd, int) else None,
                   watermark=d["watermark"] if d.get("watermark") in WATERMARK_MODES else None,
                   archived_at=_opt_float(d, "archived_at"))


@dataclass(frozen=True)
class Attachment:
    """A file uploaded to us (file_id) or a link to one elsewhere (url)."""

    file_id: str | None = None
    url: str | None = None
    name: str = ""
    mime: str = ""
    size: int = 0

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"type": "file", "name": self.name}
        if self.file_id:
            d.update(file_id=self.file_id, mime=self.mime, size=self.size)
        if self.url:
            d["url"] = self.url
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Attachment:
        size = d.get("size", 0)
        return cls(file_id=_opt_str(d, "file_id"), url=_opt_str(d, "url"), name=_str(d, "name"),
                   mime=_str(d, "mime"), size=size if isinstance(size, int) else 0)


@dataclass(frozen=True)
class TaskNote:
    author: str
    text: str
    at: float

    def to_wire(self) -> dict[str, Any]:
        return {"author": self.author, "text": self.text, "at": self.at}


@dataclass(frozen=True)
class Task:
    title: str
    assignee: str | None = None
    due: float | None = None
    status: str = "open"
    notes: tuple[TaskNote, ...] = ()
    # Which reminders were sent ("before", "overdue"), so each is sent once.
    reminded: tuple[str, ...] = ()

    @property
    def is_open(self) -> bool:
        return self.status != "done"

    def to_wire(self) -> dict[str, Any]:
        return {"title": self.title, "assignee": self.assignee, "due": self.due, "status": self.status,
                "notes": [n.to_wire() for n in self.notes], "reminded": list(self.reminded)}

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Task:
        notes = d.get("notes", [])
        return cls(
            title=_str(d, "title"), assignee=_opt_str(d, "assignee"), due=_opt_float(d, "due"),
            status=_str(d, "status", "open"),
            notes=tuple(TaskNote(author=_str(n, "author"), text=_str(n, "text"), at=_float(n, "at"))
                        for n in (notes if isinstance(notes, list) else []) if isinstance(n, dict)),
            reminded=tuple(str(r) for r in d.get("reminded", []) if isinstance(r, str)),
        )


@dataclass(frozen=True)
class Edit:
    content: str
    at: float

    def to_wire(self) -> dict[str, Any]:
        return {"content": self.content, "at": self.at}


@dataclass(frozen=True)
class Button:
    """A button on an interactive message, as clients see it. Its value, and where clicks go, stay on the server
    (integrations/interactive.py keeps them)."""

    action_id: str
    text: str
    style: str | None = None  # "primary" | "danger"

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {"action_id": self.action_id, "text": self.text}
        if self.style:
            d["style"] = self.style
        return d

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Button:
        return cls(action_id=_str(d, "action_id"), text=_str(d, "text"), style=_opt_str(d, "style"))


@dataclass(frozen=True)
class Message:
    """One entry of a channel's timeline. `ord` orders history; `seq` is the last change (sync cursor)."""

    id: str
    channel_id: str
    author: str
    type: str
    content: str
    created_at: float
    ord: int = 0
    seq: int = 0
    thread: str | None = None
    client_id: str | None = None
    mentions: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    task: Task | None = None
    reactions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    edits: tuple[Edit, ...] = ()
    edited_at: float | None = None
    deleted: bool = False
    deleted_by: str | None = None
    deleted_at: float | None = None
    via: str | None = None  # how it was posted (web | api; usage analytics); stored, never on the wire
    actions: tuple[Button, ...] = ()  # buttons (interactive messages); "actions" is on the wire only when some
    important: bool = False  # flagged by its author; "important" is on the wire only when true (docs/watermark.md)

    def with_seq(self, ord_: int, seq: int) -> Message:
        return replace(self, ord=ord_, seq=seq)

    @property
    def search_text(self) -> str:
        parts = [self.content]
        if self.task is not None:
            parts.append(self.task.title)
        parts.extend(a.name for a in self.attachments)
        return "\n".join(p for p in parts if p)

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id, "channel": self.channel_id, "author": self.author, "type": self.type,
            "content": self.content, "created_at": self.created_at, "ord": self.ord, "seq": self.seq,
            "thread": self.thread, "client_id": self.client_id, "mentions": list(self.mentions),
            "attachments": [a.to_wire() for a in self.attachments],
            "task": self.task.to_wire() if self.task else None,
            "reactions": {emoji: list(who) for emoji, who in self.reactions},
            "edits": [e.to_wire() for e in self.edits], "edited_at": self.edited_at,
            "deleted": self.deleted, "deleted_by": self.deleted_by, "deleted_at": self.deleted_at,
            **({"actions": [b.to_wire() for b in self.actions]} if self.actions else {}),
            **({"important": True} if self.important else {}),
        }

    @classmethod
    def from_wire(cls, d: dict[str, Any]) -> Message:
        task = d.get("task")
        reactions = d.get("reactions", {})
        return cls(
            id=_str(d, "id"), channel_id=_str(d, "channel"), author=_str(d, "author"),
            type=_str(d, "type", "text"), content=_str(d, "content"), created_at=_float(d, "created_at"),
            ord=int(d.get("ord", 0)), seq=int(d.get("seq", 0)), thread=_opt_str(d, "thread"),
            client_id=_opt_str(d, "client_id"),
            mentions=tuple(str(m) for m in d.get("mentions", [])),
            attachments=tuple(Attachment.from_wire(a) for a in d.get("attachments", []) if isinstance(a, dict)),
            task=Task.from_wire(task) if isinstance(task, dict) else None,
            reactions=tuple((str(k), tuple(str(x) for x in v)) for k, v in reactions.items()
                            if isinstance(v, list)) if isinstance(reactions, dict) else (),
            edits=tuple(Edit(content=_str(e, "content"), at=_float(e, "at"))
                        for e in d.get("edits", []) if isinstance(e, dict)),
            edited_at=_opt_float(d, "edited_at"), deleted=bool(d.get("deleted", False)),
            deleted_by=_opt_str(d, "deleted_by"), deleted_at=_opt_float(d, "deleted_at"),
            actions=tuple(Button.from_wire(b) for b in d.get("actions", []) if isinstance(b, dict)),
            important=d.get("important") is True,
        )


@dataclass(frozen=True)
class FileMeta:
    id: str
    sha256: str
    name: str
    mime: str
    size: int
    uploader: str
    created_at: float
    # Channels with a live (not recalled, not expired) message attaching it: their members may download it.
    channels: tuple[str, ...] = field(default=())
    attached_at: float | None = None  # first attached to a message; None: an upload never posted
    org: str = "default"  # the uploader's organisation

    @property
    def withdrawn(self) -> bool:
        """Posted once, and every message that carried it was recalled or expired."""
        return self.attached_at is not None and not self.channels

    def to_wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "mime": self.mime, "size": self.size,
                "sha256": self.sha256, "uploader": self.uploader, "created_at": self.created_at}

    def to_store(self) -> dict[str, Any]:
        return {**self.to_wire(), "channels": list(self.channels), "attached_at": self.attached_at}

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> FileMeta:
        size = d.get("size", 0)
        channels = tuple(str(c) for c in d.get("channels", []))
        created = _float(d, "created_at")
        attached = _opt_float(d, "attached_at")
        return cls(id=_str(d, "id"), sha256=_str(d, "sha256"), name=_str(d, "name"), mime=_str(d, "mime"),
                   size=size if isinstance(size, int) else 0, uploader=_str(d, "uploader"),
                   created_at=created, channels=channels,
                   # Stored before attached_at existed: posted somewhere means attached.
                   attached_at=attached if attached is not None or not channels else created)


@dataclass(frozen=True)
class Membership:
    channel: Channel
    last_read: int
    unread: int = 0


@dataclass(frozen=True)
class SearchQuery:
    text: str
    author: str | None = None
    before: float | None = None
    after: float | None = None
    limit: int = 50
