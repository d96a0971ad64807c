"""`convene import --slack EXPORT.zip`: Slack's workspace export, converted to our export records and loaded by
chat/importer.Loader (so it is idempotent the same way: docs/export.md).

Slack's layout: users.json, channels.json (public), groups.json (private), dms.json, mpims.json, and per
conversation a folder (the channel's name; a DM's id) of per-day files `YYYY-MM-DD.json`, each a list of messages
(`ts`, `user`, `text`, `thread_ts`, `reactions`, `files`, `edited`). Users are matched to ours by email, then by
name; an author missing from users.json becomes a deactivated placeholder `slack-<id>`. A message's id is derived
from its channel and `ts` (its natural key in Slack), and `ts` is its created_at.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import select

from audit import AuditEvent, Recorder
from chat.errors import ImportUnreadable
from chat.files import FileVault
from chat.importer import ImportCounts, Loader
from chat.service import CHANNEL_NAME, LOGIN
from store.database import Database
from store.schema import chat_users

log = logging.getLogger(__name__)
MAX_JSON_BYTES = 256 * 1024 * 1024  # one users.json or day file, uncompressed
# Events, not messages: a join or a topic change is shown by our own channel, not as text.
SKIPPED_SUBTYPES = {"channel_join", "channel_leave", "group_join", "group_leave", "channel_topic",
                    "channel_purpose", "group_topic", "group_purpose", "channel_archive", "channel_unarchive",
                    "channel_name", "pinned_item", "unpinned_item", "tombstone"}
EMOJI = {"+1": "👍", "thumbsup": "👍", "-1": "👎", "thumbsdown": "👎", "heart": "❤️", "joy": "😂", "tada": "🎉",
         "smile": "😄", "slightly_smiling_face": "🙂", "eyes": "👀", "white_check_mark": "✅", "rocket": "🚀",
         "pray": "🙏", "fire": "🔥", "raised_hands": "🙌", "ok_hand": "👌", "100": "💯", "thinking_face": "🤔"}
_ANGLE = re.compile(r"<([^<>\n]+)>")


def message_id(channel: str, ts: str) -> str:
    """A Slack message's natural key (its conversation and ts) as our message id: the same on every run."""
    return "m_sl_" + hashlib.sha256(f"{channel}:{ts}".encode()).hexdigest()[:24]


def as_login(text: str) -> str:
    login = re.sub(r"[^\w.@\-]", "-", text.strip())[:128].strip("-.")
    return login if login and LOGIN.match(login) else ""


def as_channel_name(text: str) -> str:
    name = re.sub(r"[^\w.\-]", "-", text.strip())[:64]
    return name if CHANNEL_NAME.match(name) else "slack-" + hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class People:
    """Slack user ids -> our logins (matched or new), and placeholders made for authors Slack did not list."""

    logins: dict[str, str] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)  # user records not yet fed
    known: set[str] = field(default_factory=set)  # logins taken (ours and this import's)

    def placeholder(self, slack_id: str, name: str = "") -> str:
        login = self.logins.get(slack_id)
        if login is None:
            login = as_login("slack-" + slack_id.lower()) or "slack-unknown"
            self.logins[slack_id] = login
            self.known.add(login)
            self.records.append({"type": "user", "user": {"login": login, "role": "member", "name": name or login,
                                                         "source": "slack", "active": False}})
        return login


def convert_text(text: str, people: People, channels: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """Slack mrkdwn to our Markdown: `<@U1>` -> `@login`, `<#C1|x>` -> `#x`, `<url|text>` -> `[text](url)`,
    `<!here>` -> `@here`; then Slack's three escapes. Returns the text and the logins it mentions."""
    mentioned: list[str] = []

    def one(m: re.Match[str]) -> str:
        inner = m.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            login = people.logins.get(target[1:]) or people.placeholder(target[1:], label)
            mentioned.append(login)
            return "@" + login
        if target.startswith("#"):
            return "#" + (label or channels.get(target[1:], target[1:]))
        if target.startswith("!"):
            word = target[1:].split("^")[0]
            return label or ("@" + word if word in ("here", "channel", "everyone") else "")
        if label and label != target:
            return f"[{label}]({target})"
        return target

    converted = _ANGLE.sub(one, text)
    return converted.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"), tuple(dict.fromkeys(mentioned))


class SlackExport:
    """The zip, read member by member (never extracted: names in it are only looked up, never paths)."""

    def __init__(self, path: Path) -> None:
        try:
            self.zip = zipfile.ZipFile(path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise ImportUnreadable(f"{path.name} is not a readable zip ({exc})") from None
        self.names = {i.filename: i for i in self.zip.infolist() if not i.is_dir()}
        self.folders: dict[str, list[str]] = {}
        for name in sorted(self.names):
            folder, _, leaf = name.rpartition("/")
            if folder and "/" not in folder and re.fullmatch(r"\d{4}-\d{2}-\d{2}\.json", leaf):
                self.folders.setdefault(folder, []).append(name)
        # Exports made with files keep them under a folder named by the file's id (__uploads/F123/name.png).
        self.blobs: dict[str, str] = {}
        for name in self.names:
            parts = name.split("/")
            for part in parts[:-1]:
                if re.fullmatch(r"F[A-Z0-9]{4,}", part):
                    self.blobs.setdefault(part, name)

    def json(self, name: str, default: Any) -> Any:
        info = self.names.get(name)
        if info is None:
            return default
        if info.file_size > MAX_JSON_BYTES:
            raise ImportUnreadable(f"{name} is {info.file_size} bytes; at most {MAX_JSON_BYTES}")
        try:
            return json.loads(self.zip.read(info))
        except (ValueError, zipfile.BadZipFile, OSError) as exc:
            raise ImportUnreadable(f"{name} is not readable JSON ({exc})") from None

    def opener(self, name: str) -> Callable[[], BinaryIO] | None:
        if name not in self.names:
            return None
        return lambda: self.zip.open(name)  # type: ignore[return-value]


class SlackImport:
    def __init__(self, db: Database, vault: FileVault, export: SlackExport) -> None:
        self.db = db
        self.export = export
        self.loader = Loader(db, vault, export.opener)
        self.people = People()
        self.channel_names: dict[str, str] = {}  # Slack channel id -> its name (for <#C1> links)

    async def _read(self, name: str, default: Any) -> Any:
        return await asyncio.to_thread(self.export.json, name, default)

    async def run(self) -> ImportCounts:
        await self._users(await self._read("users.json", []))
        conversations = await self._channels()
        for folder, record in conversations:
            await self._history(folder, record)
        await self.loader.finish()
        return self.loader.counts

    async def _users(self, users: Any) -> None:
        async with self.db.read() as conn:
            ours = list(await conn.execute(select(chat_users.c.login, chat_users.c.email)))
        by_email = {r.email.lower(): r.login for r in ours if r.email}
        no_email = {r.login for r in ours if not r.email}
        self.people.known = {r.login for r in ours}
        records = []
        for u in users if isinstance(users, list) else []:
            if not isinstance(u, dict) or not isinstance(u.get("id"), str):
                continue
            profile: dict[str, Any] = u["profile"] if isinstance(u.get("profile"), dict) else {}
            email = str(profile.get("email") or "").lower()
            name = str(u.get("name") or "")
            login = by_email.get(email) if email else None
            if login is None and as_login(name) in no_email:
                login = as_login(name)  # ours has no email to go by: the same name is the same person
            if login is None:
                login = self._free_login(as_login(name) or as_login(email.split("@")[0]) or "slack-" + u["id"].lower())
            self.people.logins[u["id"]] = login
            self.people.known.add(login)
            records.append({"type": "user", "user": {
                "login": login, "role": "bot" if u.get("is_bot") else "member", "email": email,
                "name": str(profile.get("real_name") or u.get("real_name") or name), "title": str(profile.get("title") or ""),
                "created_at": 0.0, "source": "slack", "active": not u.get("deleted")}})
        await self.loader.feed(records)

    def _free_login(self, wanted: str) -> str:
        login, n = wanted, 1
        while login in self.people.known:
            n += 1
            login = f"{wanted[:120]}-{n}"
        return login

    async def _channels(self) -> list[tuple[str, dict[str, Any]]]:
        """Channel and membership records for every conversation; returns (folder, channel record) pairs."""
        out: list[tuple[str, dict[str, Any]]] = []
        for file, kind in (("channels.json", "team"), ("groups.json", "group"), ("dms.json", "direct"),
                           ("mpims.json", "group")):
            for c in await self._read(file, []) or []:
                if not isinstance(c, dict) or not isinstance(c.get("id"), str):
                    continue
                members = [self.people.logins.get(m) or self.people.placeholder(m)
                           for m in c.get("members") or [] if isinstance(m, str)]
                if kind == "direct":
                    name, folder = "dm:" + ":".join(sorted(set(members))), c["id"]
                else:
                    name = as_channel_name(str(c.get("name") or c["id"]))
                    folder = str(c.get("name") or c["id"])
                self.channel_names[c["id"]] = name
                topic: dict[str, Any] = c["topic"] if isinstance(c.get("topic"), dict) else {}
                record = {"id": c["id"], "name": name, "kind": kind, "topic": str(topic.get("value") or ""),
                          "created_by": self.people.logins.get(str(c.get("creator")), ""),
                          "created_at": float(c.get("created") or 0)}
                await self.loader.feed([*self._new_people(), {"type": "channel", "channel": record}])
                await self.loader.feed([{"type": "membership", "membership": {"channel": c["id"], "login": m}}
                                        for m in dict.fromkeys(members)])
                out.append((folder, record))
        return out

    def _new_people(self) -> list[dict[str, Any]]:
        records, self.people.records = self.people.records, []
        return records

    async def _history(self, folder: str, channel: dict[str, Any]) -> None:
        for day in self.export.folders.get(folder, []):
            raw = await self._read(day, [])
            messages = sorted((m for m in raw if isinstance(m, dict) and isinstance(m.get("ts"), str)),
                              key=lambda m: float(m["ts"])) if isinstance(raw, list) else []
            records: list[dict[str, Any]] = []
            files: list[dict[str, Any]] = []
            for m in messages:
                record = self._message(m, channel["id"], files)
                if record is None:
                    self.loader.counts.of("messages").skipped += 1
                else:
                    records.append(record)
            await self.loader.feed([*self._new_people(), *records, *files])

    def _message(self, m: dict[str, Any], channel: str, files: list[dict[str, Any]]) -> dict[str, Any] | None:
        if m.get("type") != "message" or m.get("subtype") in SKIPPED_SUBTYPES:
            return None
        ts = m["ts"]
        author_id = m.get("user") or m.get("bot_id")
        if not isinstance(author_id, str):
            return None
        author = self.people.logins.get(author_id) or self.people.placeholder(author_id, str(m.get("username") or ""))
        content, mentions = convert_text(str(m.get("text") or ""), self.people, self.channel_names)
        mid = message_id(channel, ts)
        thread_ts = m.get("thread_ts")
        reactions: dict[str, list[str]] = {}
        for r in m.get("reactions") or []:
            if isinstance(r, dict) and isinstance(r.get("name"), str):
                emoji = EMOJI.get(r["name"], f":{r['name']}:")[:32]
                reactions[emoji] = [self.people.logins.get(u) or self.people.placeholder(u)
                                    for u in r.get("users") or [] if isinstance(u, str)]
        edited = m.get("edited") if isinstance(m.get("edited"), dict) else None
        return {"type": "message", "message": {
            "id": mid, "channel": channel, "author": author, "type": "text", "content": content,
            "created_at": float(ts), "thread": message_id(channel, thread_ts) if isinstance(thread_ts, str) and thread_ts != ts else None,
            "mentions": list(mentions), "reactions": reactions,
            "attachments": [self._file(f, mid, channel, author, float(ts), files) for f in m.get("files") or []
                            if isinstance(f, dict)],
            "edited_at": float(edited["ts"]) if edited and isinstance(edited.get("ts"), str) else None}}

    def _file(self, f: dict[str, Any], mid: str, channel: str, author: str, at: float,
              files: list[dict[str, Any]]) -> dict[str, Any]:
        """An attachment: our file when the zip has its content, else a link to Slack's copy (counted missing)."""
        slack_id, name = str(f.get("id") or ""), str(f.get("name") or f.get("title") or "file")
        entry = self.export.blobs.get(slack_id)
        if entry is None:
            self.loader.counts.files_missing += 1
            return {"type": "file", "name": name, **({"url": f["url_private"]} if isinstance(f.get("url_private"), str) else {})}
        file_id = "f_sl_" + hashlib.sha256(slack_id.encode()).hexdigest()[:24]
        files.append({"type": "file", "file": {"id": file_id, "name": name, "mime": "", "uploader": author,
                                               "created_at": at, "attached_at": at, "refs": [[mid, channel]],
                                               "blob": entry}})
        size = self.export.names[entry].file_size
        return {"type": "file", "file_id": file_id, "name": name, "mime": str(f.get("mimetype") or ""), "size": size}


async def import_slack(db: Database, vault: FileVault, path: Path, recorder: Recorder) -> ImportCounts:
    started = time.perf_counter()
    export = await asyncio.to_thread(SlackExport, path)
    try:
        counts = await SlackImport(db, vault, export).run()
    finally:
        export.zip.close()
    counts.seconds = time.perf_counter() - started
    await recorder.record(AuditEvent("import.run", "import", path.name, after={"format": "slack", **counts.as_dict()}))
    return counts
