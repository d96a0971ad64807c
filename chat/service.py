"""The chat service: every rule about channels, messages, tasks and files, used by the REST API,
the WebSocket, background jobs and other parts of the server (ensure_meeting_channel, post_task).

Each method takes the acting user, checks the role table (chat.policy) and membership, writes through
the ChatStore, and publishes one event on the bus.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from audit import AuditEvent, Recorder, content_digest
from chat.bus import Bus
from chat.errors import (
    ChannelArchived,
    ChannelExists,
    ChannelNotFound,
    FileNotFound,
    MessageNotFound,
    MessageRecalled,
    NotMember,
    NotPermitted,
    QuotaExceeded,
    RecallWindowClosed,
    UserNotFound,
)
from chat.legal_hold import HoldStore
from chat.model import (
    MESSAGE_TYPES,
    ROLES,
    TASK_STATUSES,
    WATERMARK_MODES,
    Attachment,
    Button,
    Channel,
    Edit,
    FileMeta,
    Membership,
    Message,
    OrgSettings,
    SearchQuery,
    Task,
    TaskNote,
    User,
    new_id,
)
from identity.permission_store import PermissionStore
from identity.permissions import Action, PermissionTable, allowed, may_grant, outranked_by, require
from chat.sniff import sanitize_name
from chat.store import ChatStore
from common.errors import BadRequest, Conflict, Forbidden, InvalidField
from identity.orgs import DEFAULT_ORG, unqualify
from common.names import department_parts, display_name
from common.times import parse_time

log = logging.getLogger(__name__)

SYSTEM_LOGIN = "convene"
CHANNEL_NAME = re.compile(r"^[\w][\w.\-]{0,63}$")
LOGIN = re.compile(r"^[\w][\w.@\-]{0,127}$")
MENTION = re.compile(r"(?<![\w@])@([\w][\w.\-]*[\w]|[\w])")
# An `@` inside a link is part of the address (https://x.example/@bob/page), not a mention: as the renderer reads it.
LINK = re.compile(r"https?://\S+", re.IGNORECASE)


def mentions_in(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(MENTION.findall(LINK.sub(" ", text))))
DEPARTMENT = re.compile(r"^[^/\x00-\x1f]{1,64}(/[^/\x00-\x1f]{1,64}){0,15}$")


def valid_login(login: object, field: str = "login") -> str:
    if not isinstance(login, str) or not LOGIN.match(login):
        raise InvalidField(f"{field} must be 1-128 letters, digits, '.', '@', '-' or '_'", field=field)
    return login


@dataclass(frozen=True)
class PostRequest:
    to: str
    type: str = "text"
    content: str = ""
    attachments: tuple[dict[str, Any], ...] = ()
    thread: str | None = None
    client_id: str | None = None
    task: dict[str, Any] | None = None
    via: str | None = None  # web | api: what authenticated the post (usage analytics)
    actions: tuple[Button, ...] = ()  # buttons: integrations/interactive.py validates them and keeps their values
    important: bool = False  # the author flags it (a watermark setting of "important" draws over it)


@dataclass(frozen=True)
class ChannelWatermark:
    """A change of a channel's watermark setting: a mode, or None to follow the organisation's again."""

    mode: str | None


@dataclass(frozen=True)
class TaskPatch:
    status: str | None = None
    title: str | None = None
    assignee: str | None = None
    due: float | None = None
    clear_due: bool = False
    note: str | None = None


@dataclass(frozen=True)
class SyncResult:
    updated: list[Message]
    deleted: list[Message]
    next: int
    has_more: bool


def org_flags(org: OrgSettings) -> dict[str, bool]:
    """The settings the permission table's defaults depend on (identity/permissions.py CONDITIONS)."""
    return {"members_create_channels": org.members_create_channels}


class ChatService:
    def __init__(self, store: ChatStore, bus: Bus, max_content_chars: int = 20_000) -> None:
        self.store = store
        self.bus = bus
        self._max_content = max_content_chars
        # The organisation's permission table (setup_chat gives the server's; None: the defaults under the
        # stored settings, for the CLI's jobs).
        self.permissions: PermissionStore | None = None
        self.audit = Recorder.off()  # setup_chat gives it the store's audit log (docs/audit.md lists the events)
        # Legal holds (chat/legal_hold.py): a recall of a held message keeps its original there. setup_chat sets it.
        self.legal_holds: HoldStore | None = None

    # Users ------------------------------------------------------------------------------------

    async def org(self, org_id: str = DEFAULT_ORG) -> OrgSettings:
        """Organisation `org_id`'s settings. `members_create_channels` as read says whether members hold
        create_team_channel: an override of that row in the permission table decides it then."""
        stored = await self.store.get_org(org_id)
        if self.permissions is None:
            return stored
        table = await self.permissions.table(org_id)
        return replace(stored, members_create_channels=table.holds("member", Action.CREATE_TEAM_CHANNEL))

    async def table(self, org_id: str = DEFAULT_ORG) -> PermissionTable:
        """Organisation `org_id`'s permission table, which every check here asks (identity/permissions.py)."""
        if self.permissions is None:
            return PermissionTable(org_id, flags=org_flags(await self.store.get_org(org_id)))
        return await self.permissions.table(org_id)

    async def holds(self, actor: User, permission: Action) -> bool:
        return allowed(actor, permission, await self.table(actor.org))

    async def ensure_user(self, login: str, role: str = "member", name: str = "", org: str = DEFAULT_ORG) -> User:
        """The user `login`, made (in organisation `org`) if there is none. Logins are unique across
        organisations: the user found may belong to another one, which the caller checks where it matters."""
        user = await self.store.get_user(login)
        if user is None:
            user = User(login=login, role=role, name=name or login, created_at=time.time(), org=org)
            await self.store.put_user(user)
        return user

    async def user_in(self, org: str, login: str) -> User | None:
        """The user `login` of organisation `org`; None also when the login belongs to another organisation."""
        user = await self.store.get_user(login)
        return user if user is not None and user.org == org else None

    async def users_in(self, org: str, logins: Sequence[str]) -> dict[str, User]:
        """`user_in` for many logins in one read: those of organisation `org`, by login."""
        return {login: user for login, user in (await self.store.get_users(logins)).items() if user.org == org}

    async def require_users(self, org: str, values: Sequence[object], field: str) -> list[str]:
        """The logins, each well-formed (InvalidField on `field`) and a user of organisation `org`, checked in one
        read; UserNotFound names the first that is not, in the order given."""
        logins = [valid_login(value, field) for value in values]
        found = await self.users_in(org, logins)
        missing = next((login for login in logins if login not in found), None)
        if missing is not None:
            raise UserNotFound(f"no user {missing!r}", login=missing)
        return logins

    async def add_user(self, actor: User | None, login: str, role: str, department: str = "",
                       name: str = "", org: str | None = None) -> tuple[User, bool]:
        """Creates or updates a user (actor None: the operator's CLI). `name` "" keeps the current one. The user
        is of the actor's organisation (the CLI's: `org`, else the default one)."""
        valid_login(login)
        org = actor.org if actor is not None else org or DEFAULT_ORG
        if name:
            name = display_name(name, "name", max_len=128)  # one line: names reach notes and transcripts
        if role not in ROLES:
            raise InvalidField(f"role must be one of {', '.join(ROLES)}", field="role")
        if department and not DEPARTMENT.match(department):
            raise InvalidField("department is a path like 'engineering/media'", field="department")
        if actor is not None:
            require(actor, Action.MANAGE_USERS, await self.table(actor.org))
            if not may_grant(actor, role):
                raise NotPermitted(f"{actor.role} may not make a user {role}")
        existing = await self.store.get_user(login)
        if existing is not None and existing.org != org:
            # Logins are unique across organisations (a sign-in names no organisation besides its Host).
            raise Conflict(f"the login {login!r} is taken")
        if existing is not None and actor is not None and existing.role != role:
            require(actor, Action.CHANGE_ROLES, await self.table(actor.org))
        if existing is not None and actor is not None and outranked_by(actor, existing.role):
            raise NotPermitted(f"a {actor.role} may not change a {existing.role}")
        user = User(login=login, role=role, name=name or (existing.name if existing else login),
                    department=department or (existing.department if existing else ""),
                    created_at=existing.created_at if existing else time.time(), org=org)
        await self.store.put_user(user)
        await self._audit_user(existing, user)
        return user, existing is None

    async def _audit_user(self, before: User | None, after: User) -> None:
        fields = ("role", "department", "name")
        old = {f: getattr(before, f) for f in fields} if before else None
        new = {f: getattr(after, f) for f in fields}
        if old is None:
            await self.audit.record(AuditEvent("user.create", "user", after.login, after=new, org_id=after.org))
        elif old != new:
            changed = [f for f in fields if old[f] != new[f]]
            await self.audit.record(AuditEvent("user.role" if "role" in changed else "user.update", "user",
                                               after.login, before={f: old[f] for f in changed},
                                               after={f: new[f] for f in changed}, org_id=after.org))

    async def patch_user(self, actor: User, login: str, role: str | None, department: str | None,
                         name: str | None) -> User:
        if name:  # None and "" keep the current name, as in add_user
            name = display_name(name, "name", max_len=128)
        existing = await self.user_in(actor.org, login)
        if existing is None:
            raise UserNotFound(f"no user {login!r}")
        return (await self.add_user(actor, login, role or existing.role,
                                    department if department is not None else existing.department,
                                    name or existing.name))[0]

    async def departments(self, actor: User) -> dict[str, Any]:
        require(actor, Action.READ_DIRECTORY, await self.table(actor.org))
        root: dict[str, Any] = {"name": "", "path": "", "users": [], "children": {}}
        for user in await self.store.list_users(actor.org):
            node = root
            path = ""
            for part in department_parts(user.department):
                path = f"{path}/{part}" if path else part
                node = node["children"].setdefault(part, {"name": part, "path": path, "users": [], "children": {}})
            node["users"].append(user.login)

        def freeze(n: dict[str, Any]) -> dict[str, Any]:
            return {**n, "children": [freeze(c) for c in n["children"].values()]}

        return freeze(root)

    # Channels ---------------------------------------------------------------------------------

    async def ensure_meeting_channel(self, meeting_id: str, room_name: str) -> Channel:
        """The channel of one meeting (named by the meeting's id, its topic the room's name), created on first
        use (safe to call often). A room used again gets a new meeting and so a new, empty channel. `room_name`
        is the server-internal one (`org~room` outside the default organisation): the channel is that one's."""
        org, topic = unqualify(room_name)
        existing = await self.store.find_channel(meeting_id, org)
        if existing is not None:
            if existing.kind != "meeting":
                raise ChannelExists(f"a {existing.kind} channel is named {meeting_id!r}", name=meeting_id)
            return existing
        channel = Channel(id=new_id("c_"), name=meeting_id, kind="meeting", created_by=SYSTEM_LOGIN,
                          created_at=time.time(), topic=topic, org=org)
        try:
            await self.store.create_channel(channel, [])
        except ChannelExists:
            return await self.ensure_meeting_channel(meeting_id, room_name)
        await self.bus.publish({"type": "channel", "channel": channel.id, "data": channel.to_wire()})
        return channel

    async def join_meeting(self, meeting_id: str, room_name: str, login: str) -> Channel:
        channel = await self.ensure_meeting_channel(meeting_id, room_name)
        if not await self.store.is_member(channel.id, login):
            await self._add_members(channel, [login])
        return channel

    async def create_channel(self, actor: User, name: str | None, kind: str, members: list[str],
                             topic: str = "") -> tuple[Channel, bool]:
        org = await self.table(actor.org)
        if kind not in ("team", "group", "direct"):
            raise InvalidField("kind must be team, group or direct (meeting channels come with rooms)", field="kind")
        await self.require_users(actor.org, members, "members")
        everyone = sorted({actor.login, *members})
        if kind == "direct":
            require(actor, Action.CREATE_DIRECT, org)
            others = [m for m in everyone if m != actor.login]
            if len(others) != 1:
                raise InvalidField("a direct chat has exactly one other member", field="members")
            return await self.direct_channel(actor.login, others[0], actor.org)
        if kind == "group":
            require(actor, Action.CREATE_GROUP, org)
            name = name or f"group-{new_id('')[:10]}"
        else:
            require(actor, Action.CREATE_TEAM_CHANNEL, org)
        if not isinstance(name, str) or not CHANNEL_NAME.match(name):
            raise InvalidField("name must be 1-64 letters, digits, '.', '-' or '_'", field="name")
        channel = Channel(id=new_id("c_"), name=name, kind=kind, created_by=actor.login,
                          created_at=time.time(), topic=topic, org=actor.org)
        await self.store.create_channel(channel, everyone)
        await self.audit.record(AuditEvent("channel.create", "channel", channel.id, actor=actor.login, after={
            "name": name, "kind": kind, "topic": topic, "members": everyone}))
        await self.bus.publish({"type": "channel", "channel": channel.id, "data": channel.to_wire()})
        await self.bus.publish({"type": "members", "channel": channel.id, "added": everyone, "removed": []})
        return channel, True

    async def direct_channel(self, a: str, b: str, org: str = DEFAULT_ORG) -> tuple[Channel, bool]:
        pair = sorted({a, b})
        name = "dm:" + ":".join(pair)
        existing = await self.store.find_channel(name, org)
        if existing is not None:
            return existing, False
        channel = Channel(id=new_id("c_"), name=name, kind="direct", created_by=a, created_at=time.time(), org=org)
        try:
            await self.store.create_channel(channel, pair)
        except ChannelExists:
            found = await self.store.find_channel(name, org)
            assert found is not None
            return found, False
        await self.bus.publish({"type": "channel", "channel": channel.id, "data": channel.to_wire()})
        await self.bus.publish({"type": "members", "channel": channel.id, "added": pair, "removed": []})
        return channel, True

    async def resolve(self, ref: str, org: str | None = None) -> Channel:
        """A channel by id or name, of organisation `org` (another's is not found; None: by id of any, for the
        server's own parts, by name of the default organisation)."""
        channel = await self.store.get_channel(ref) if ref.startswith("c_") else None
        channel = channel or await self.store.find_channel(ref, org or DEFAULT_ORG)
        if channel is None or (org is not None and channel.org != org):
            raise ChannelNotFound(f"no channel {ref!r}", channel=ref)
        return channel

    async def readable(self, actor: User, ref: str) -> Channel:
        channel = await self.resolve(ref, actor.org)
        if not await self.store.is_member(channel.id, actor.login):
            raise NotMember(f"you are not a member of {channel.name!r}", channel=channel.id)
        return channel

    async def channels(self, actor: User) -> list[Membership]:
        return await self.store.memberships(actor.login)

    async def _add_members(self, channel: Channel, logins: list[str]) -> None:
        await self.store.add_members(channel.id, logins)
        await self.bus.publish({"type": "members", "channel": channel.id, "added": logins, "removed": []})

    async def change_members(self, actor: User, ref: str, add: list[str], remove: list[str]) -> list[str]:
        org = await self.table(actor.org)
        channel = await self.resolve(ref, actor.org)
        if channel.kind == "direct":
            raise Forbidden("direct chats keep their two members")
        manager = channel.created_by == actor.login or allowed(actor, Action.MANAGE_ANY_CHANNEL, org)
        is_member = await self.store.is_member(channel.id, actor.login)
        # The answer lists the members: an outsider may only join a team channel, not read who is in a group.
        if not (manager or is_member or (channel.kind == "team" and add == [actor.login] and not remove)):
            raise NotMember(f"you are not a member of {channel.name!r}", channel=channel.id)
        await self.require_users(actor.org, add, "add")
        for login in add:
            if login == actor.login and channel.kind == "team" and allowed(actor, Action.JOIN_TEAM_CHANNEL, org):
                continue
            if not (manager or (is_member and channel.kind in ("group", "meeting") and actor.role != "guest")):
                raise NotPermitted("only the channel's creator or an admin adds members here")
        for login in remove:
            if login != actor.login and not manager:
                raise NotPermitted("only the channel's creator or an admin removes others")
        if add:
            await self.store.add_members(channel.id, add)
            await self.audit.record(AuditEvent("member.add", "channel", channel.id, actor=actor.login,
                                               after={"logins": add}))
        if remove:
            await self.store.remove_members(channel.id, remove)
            await self.audit.record(AuditEvent("member.remove", "channel", channel.id, actor=actor.login,
                                               before={"logins": remove}))
        await self.bus.publish({"type": "members", "channel": channel.id, "added": add, "removed": remove})
        return await self.store.members(channel.id)

    async def update_channel(self, actor: User, ref: str, topic: str | None,
                             retention_days: int | None, clear_retention: bool,
                             watermark: ChannelWatermark | None = None) -> Channel:
        """`watermark`: the channel's own watermark setting (a mode, or None to follow the org's), when changed;
        like retention it is the organisation's policy, so it needs edit_org."""
        channel = await self.resolve(ref, actor.org)
        org = await self.table(actor.org)
        if not (channel.created_by == actor.login or allowed(actor, Action.MANAGE_ANY_CHANNEL, org)):
            raise NotPermitted("only the channel's creator or an admin changes it")
        if retention_days is not None or clear_retention or watermark is not None:
            require(actor, Action.EDIT_ORG, org)
        updated = replace(channel, topic=topic if topic is not None else channel.topic,
                          retention_days=None if clear_retention else (
                              retention_days if retention_days is not None else channel.retention_days),
                          watermark=channel.watermark if watermark is None else watermark.mode)
        await self.store.update_channel(updated)
        for field_, event in (("topic", "channel.topic"), ("retention_days", "channel.retention"),
                              ("watermark", "channel.watermark")):
            if getattr(channel, field_) != getattr(updated, field_):
                await self.audit.record(AuditEvent(event, "channel", channel.id, actor=actor.login,
                                                   before={field_: getattr(channel, field_)},
                                                   after={field_: getattr(updated, field_)}))
        await self.bus.publish({"type": "channel", "channel": channel.id, "data": updated.to_wire()})
        return updated

    async def mark_read(self, actor: User, ref: str, ord_: int) -> None:
        channel = await self.readable(actor, ref)
        await self.store.set_read(channel.id, actor.login, ord_)

    # Messages ---------------------------------------------------------------------------------

    async def _attachments(self, actor: User, channel: Channel,
                           raw: tuple[dict[str, Any], ...]) -> tuple[Attachment, ...]:
        out: list[Attachment] = []
        for a in raw:
            if not isinstance(a, dict) or a.get("type", "file") != "file" or not set(a) <= {"type", "file_id", "url", "name"}:
                raise InvalidField("an attachment is {\"type\": \"file\", \"file_id\"|\"url\"}", field="attachments")
            if isinstance(a.get("file_id"), str):
                meta = await self.store.get_file(a["file_id"])
                # A withdrawn file stays withdrawn: not even an admin re-posts what was recalled.
                if meta is None or meta.withdrawn or not await self._may_read_file(actor, meta):
                    raise FileNotFound(f"no file {a['file_id']!r}", file_id=a["file_id"])
                out.append(Attachment(file_id=meta.id, name=meta.name, mime=meta.mime, size=meta.size))
            elif isinstance(a.get("url"), str):
                url = a["url"]
                if not re.match(r"^https?://[^\s/$.?#][^\s]*$", url) or len(url) > 2048:
                    raise InvalidField("an attachment url must be http(s)://…", field="attachments")
                name = a.get("name") if isinstance(a.get("name"), str) else url.rstrip("/").rsplit("/", 1)[-1]
                out.append(Attachment(url=url, name=sanitize_name(str(name))))
            else:
                raise InvalidField("an attachment needs a file_id or a url", field="attachments")
        if len(out) > 20:
            raise InvalidField("at most 20 attachments", field="attachments")
        return tuple(out)

    async def _task(self, channel: Channel, raw: dict[str, Any] | None) -> Task:
        if not isinstance(raw, dict) or not set(raw) <= {"title", "assignee", "due", "status"}:
            raise InvalidField("a task message needs \"task\": {\"title\", \"assignee\"?, \"due\"?}", field="task")
        title = raw.get("title")
        if not isinstance(title, str) or not 1 <= len(title.strip()) <= 500:
            raise InvalidField("task title must be 1-500 characters", field="task.title")
        assignee = raw.get("assignee")
        if assignee is not None:
            await self._check_assignee(channel, assignee)
        status = raw.get("status", "open")
        if status not in TASK_STATUSES:
            raise InvalidField("status is open, in_progress or done", field="task.status")
        return Task(title=title.strip(), assignee=assignee, due=parse_time(raw.get("due"), "task.due"), status=status)

    async def _check_assignee(self, channel: Channel, assignee: object) -> None:
        login = valid_login(assignee, "task.assignee")
        if not await self.store.is_member(channel.id, login):
            raise InvalidField(f"{login!r} is not a member of this channel", field="task.assignee")

    async def post(self, actor: User, req: PostRequest) -> tuple[Message, bool]:
        require(actor, Action.POST, await self.table(actor.org))
        channel = await self.readable(actor, req.to)
        if channel.archived_at is not None:
            raise ChannelArchived(f"{channel.name!r} is archived: read-only", channel=channel.id)
        if req.type not in MESSAGE_TYPES:
            raise InvalidField("type must be text, task or file", field="type")
        if len(req.content) > self._max_content:
            raise InvalidField(f"content may be at most {self._max_content} characters", field="content")
        if req.client_id is not None and not 1 <= len(req.client_id) <= 128:
            raise InvalidField("client_id must be 1-128 characters", field="client_id")
        if req.client_id is not None:
            # A retry must not be refused for a limit the first try passed: answer it first.
            earlier = await self.store.by_client_id(actor.login, req.client_id)
            if earlier is not None:
                return earlier, False
        attachments = await self._attachments(actor, channel, req.attachments)
        task = await self._task(channel, req.task) if req.type == "task" else None
        if req.type != "task" and req.task is not None:
            raise InvalidField("task is only for messages of type task", field="task")
        if req.type == "file" and not attachments:
            raise InvalidField("a file message needs at least one attachment", field="attachments")
        if req.type == "text" and not req.content.strip() and not attachments:
            raise InvalidField("content must not be empty", field="content")
        thread = None
        if req.thread is not None:
            root = await self.store.get_message(req.thread)
            if root is None or root.channel_id != channel.id:
                raise MessageNotFound(f"no message {req.thread!r} in this channel", field="thread")
            thread = root.thread or root.id
        message, created = await self._insert(Message(
            id=new_id("m_"), channel_id=channel.id, author=actor.login, type=req.type, content=req.content,
            created_at=time.time(), thread=thread, client_id=req.client_id, via=req.via,
            mentions=mentions_in(req.content), attachments=attachments, task=task, actions=req.actions,
            important=req.important))
        if created:
            for a in attachments:
                if a.file_id:
                    await self.store.attach_file(a.file_id, message.id, channel.id, time.time())
        return message, created

    async def _insert(self, message: Message) -> tuple[Message, bool]:
        stored, created = await self.store.insert_message(message)
        if created:
            await self.store.set_read(stored.channel_id, stored.author, stored.ord)
            await self._publish("message", stored)
        return stored, created

    async def _publish(self, kind: str, m: Message, **extra: Any) -> None:
        await self.bus.publish({"type": kind, "channel": m.channel_id, "cursor": m.seq, "message": m.to_wire(),
                                **extra})

    async def get_message(self, actor: User, message_id: str) -> Message:
        message = await self.store.get_message(message_id)
        if message is None or not await self.store.is_member(message.channel_id, actor.login):
            raise MessageNotFound(f"no message {message_id!r}")
        return message

    async def _writable(self, actor: User, message_id: str) -> Message:
        """A message the caller reads, in a channel that is not archived (archived channels are read-only)."""
        message = await self.get_message(actor, message_id)
        channel = await self.store.get_channel(message.channel_id)
        if channel is not None and channel.archived_at is not None:
            raise ChannelArchived(f"{channel.name!r} is archived: read-only", channel=channel.id)
        return message

    async def edit(self, actor: User, message_id: str, content: str) -> Message:
        await self._writable(actor, message_id)
        if len(content) > self._max_content or not content.strip():
            raise InvalidField(f"content must be 1-{self._max_content} characters", field="content")

        def change(m: Message) -> Message:
            if m.deleted:
                raise MessageRecalled("this message was recalled")
            if m.author != actor.login:
                raise NotPermitted("only the author edits a message")
            now = time.time()
            return replace(m, content=content, edits=(*m.edits, Edit(m.content, m.edited_at or m.created_at)),
                           edited_at=now, mentions=mentions_in(content))

        updated = await self.store.mutate_message(message_id, change)
        await self._publish("edit", updated)
        return updated

    async def set_important(self, actor: User, message_id: str, important: bool) -> Message:
        """Flags a message important (or not): its author only, as for an edit; the change is an `edit` event."""
        await self._writable(actor, message_id)

        def change(m: Message) -> Message:
            if m.deleted:
                raise MessageRecalled("this message was recalled")
            if m.author != actor.login:
                raise NotPermitted("only the author marks a message important")
            return replace(m, important=important)

        updated = await self.store.mutate_message(message_id, change)
        await self._publish("edit", updated)
        return updated

    async def recall(self, actor: User, message_id: str, by_policy: bool = False) -> Message:
        org = await self.org(actor.org)
        if not by_policy:
            await self.get_message(actor, message_id)
        admin = by_policy or allowed(actor, Action.RECALL_ANY, await self.table(actor.org))
        carried: list[str] = []
        was: list[Message] = []

        def change(m: Message) -> Message:
            carried[:] = [a.file_id for a in m.attachments if a.file_id]
            was[:] = [m]
            if m.deleted:
                raise MessageRecalled("already recalled")
            if not admin:
                if m.author != actor.login:
                    raise NotPermitted("only the author or an admin recalls a message")
                if time.time() - m.created_at > org.recall_window_seconds:
                    raise RecallWindowClosed(f"messages may be recalled within {org.recall_window_seconds} s",
                                             window_seconds=org.recall_window_seconds)
            return replace(m, content="", attachments=(), task=None, edits=(), mentions=(), reactions=(), actions=(),
                           important=False, deleted=True, deleted_by=actor.login, deleted_at=time.time())

        updated = await self.store.mutate_message(message_id, change)
        # The holds of the message's organisation (the recaller's: another's channels are not found above).
        holds = None if self.legal_holds is None else self.legal_holds.in_org(actor.org)
        if holds is not None and (await holds.held()).covers(was[0].author, was[0].channel_id):
            await holds.keep_copy(was[0], actor.login)  # hidden from users, kept for the hold
        for file_id in carried:  # its files go with it (only admins still read a withdrawn file)
            await self.store.detach_file(file_id, updated.id, updated.channel_id)
        if not by_policy:  # retention's recalls are audited as counts by its job, not one by one
            await self._audit_recall(actor, was[0], updated)
        await self._publish("recall", updated)
        return updated

    async def _audit_recall(self, actor: User, before: Message, after: Message) -> None:
        """A hash of what was said, never the words: the log must not keep what a recall took back."""
        await self.audit.record(AuditEvent(
            "message.recall" if before.author == actor.login else "message.delete", "message", before.id,
            actor=actor.login,
            before={"author": before.author, "channel": before.channel_id, "content_sha256": content_digest(
                before.content), "files": [a.file_id for a in before.attachments if a.file_id]},
            after={"deleted": True, "deleted_by": after.deleted_by}))

    async def replace_by_integration(self, message_id: str, content: str, actions: tuple[Button, ...]) -> Message:
        """An integration's answer to a button click replaces its message's text and buttons, for everyone (the
        ordinary `edit` event). The caller checked that the message carries that integration's buttons."""
        if len(content) > self._max_content or not content.strip():
            raise InvalidField(f"text must be 1-{self._max_content} characters", field="text")

        def change(m: Message) -> Message:
            if m.deleted:
                raise MessageRecalled("this message was recalled")
            return replace(m, content=content, actions=actions, edited_at=time.time(), mentions=mentions_in(content))

        updated = await self.store.mutate_message(message_id, change)
        await self._publish("edit", updated)
        return updated

    async def send_ephemeral(self, login: str, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Something only `login` sees, in a channel: an `ephemeral` event to that user's sockets alone (the hub
        delivers events with `to` to that login only). Never stored: a client that was offline does not get it."""
        ephemeral = {"id": new_id("e_"), "channel": channel_id, "created_at": time.time(), **body}
        await self.bus.publish({"type": "ephemeral", "channel": channel_id, "to": login, "ephemeral": ephemeral})
        return ephemeral

    async def post_as_bot(self, bot_login: str, bot_name: str, channel_id: str, content: str,
                          org: str = DEFAULT_ORG) -> Message:
        """A post by a server-side bot (a slash command's answer) of organisation `org`: the bot user is made,
        and added to the channel, on first use."""
        if len(content) > self._max_content or not content.strip():
            raise InvalidField(f"text must be 1-{self._max_content} characters", field="text")
        bot = await self.ensure_user(bot_login, role="bot", name=bot_name, org=org)
        if bot.role != "bot" or bot.org != org:  # a person (or another organisation's user) under this login
            log.warning("a server bot's post as %r refused: that login is a %s of organisation %s", bot_login,
                        bot.role, bot.org)
            raise Conflict(f"the login {bot_login!r} is not this organisation's bot; nothing was posted")
        if not await self.store.is_member(channel_id, bot_login):
            await self.store.add_members(channel_id, [bot_login])
        message, _ = await self._insert(Message(id=new_id("m_"), channel_id=channel_id, author=bot_login,
                                                type="text", content=content, created_at=time.time(),
                                                mentions=mentions_in(content)))
        return message

    async def react(self, actor: User, message_id: str, emoji: str, on: bool) -> Message:
        await self._writable(actor, message_id)
        if not 1 <= len(emoji) <= 32 or any(c.isspace() for c in emoji):
            raise InvalidField("emoji must be 1-32 characters without spaces", field="emoji")

        def change(m: Message) -> Message:
            if m.deleted:
                raise MessageRecalled("this message was recalled")
            table = {k: list(v) for k, v in m.reactions}
            who = table.setdefault(emoji, [])
            if on and actor.login not in who:
                who.append(actor.login)
            if not on and actor.login in who:
                who.remove(actor.login)
            return replace(m, reactions=tuple((k, tuple(v)) for k, v in table.items() if v))

        updated = await self.store.mutate_message(message_id, change)
        await self._publish("reaction", updated)
        return updated

    # Tasks ------------------------------------------------------------------------------------

    async def post_task(self, channel: str, title: str, assignee_login: str | None, due: datetime | None,
                        author_login: str) -> Message:
        """For other parts of the server (captions, rooms): posts a task as `author_login` into a
        channel (id or name; a meeting room's name works), adding author and assignee as members."""
        ch = await self.resolve(channel)
        author = await self.ensure_user(author_login, role="guest")
        logins = [author.login] + ([assignee_login] if assignee_login else [])
        for login in logins:
            await self.ensure_user(login, role="guest")
        missing = [x for x in logins if not await self.store.is_member(ch.id, x)]
        if missing:
            await self._add_members(ch, missing)
        task = Task(title=title, assignee=assignee_login, due=due.timestamp() if due else None)
        message, _ = await self._insert(Message(id=new_id("m_"), channel_id=ch.id, author=author.login,
                                                type="task", content="", created_at=time.time(), task=task))
        return message

    async def update_task(self, actor: User, message_id: str, patch: TaskPatch) -> Message:
        message = await self._writable(actor, message_id)
        if message.task is None:
            raise MessageNotFound(f"message {message_id!r} is not a task")
        org = await self.table(actor.org)
        if not (actor.login in (message.author, message.task.assignee) or allowed(actor, Action.MANAGE_ANY_CHANNEL, org)):
            raise NotPermitted("only the task's author, its assignee or an admin changes it")
        if patch.status is not None and patch.status not in TASK_STATUSES:
            raise InvalidField("status is open, in_progress or done", field="status")
        if patch.title is not None and not 1 <= len(patch.title.strip()) <= 500:
            raise InvalidField("title must be 1-500 characters", field="title")
        if patch.note is not None and not 1 <= len(patch.note.strip()) <= 2000:
            raise InvalidField("note must be 1-2000 characters", field="note")
        channel = await self.resolve(message.channel_id)
        if patch.assignee is not None:
            await self._check_assignee(channel, patch.assignee)

        def change(m: Message) -> Message:
            if m.deleted or m.task is None:
                raise MessageRecalled("this task was recalled")
            t = m.task
            due = None if patch.clear_due else (patch.due if patch.due is not None else t.due)
            notes = t.notes + ((TaskNote(actor.login, patch.note.strip(), time.time()),) if patch.note else ())
            reminded = t.reminded if due == t.due else ()
            return replace(m, task=replace(t, status=patch.status or t.status, title=(patch.title or t.title).strip(),
                                           assignee=patch.assignee or t.assignee, due=due, notes=notes,
                                           reminded=reminded))

        updated = await self.store.mutate_message(message_id, change)
        await self._publish("task", updated)
        return updated

    async def tasks(self, actor: User, assignee: str, open_only: bool) -> list[Message]:
        login = actor.login if assignee == "me" else assignee
        if login != actor.login:
            require(actor, Action.READ_DIRECTORY, await self.table(actor.org))
        mine = set(await self.store.channel_ids_of(actor.login))
        return [t for t in await self.store.tasks_of(login, open_only) if t.channel_id in mine]

    async def remind(self, message: Message, kind: str) -> bool:
        """Posts a reminder for a task once per kind ("before" or "overdue"); False when already sent."""
        def change(m: Message) -> Message:
            if m.task is None or not m.task.is_open or kind in m.task.reminded:
                raise MessageRecalled("no reminder due")
            return replace(m, task=replace(m.task, reminded=(*m.task.reminded, kind)))

        try:
            updated = await self.store.mutate_message(message.id, change)
        except MessageRecalled:
            return False
        await self._publish("task", updated)
        task = updated.task
        assert task is not None
        await self.ensure_user(SYSTEM_LOGIN, role="bot", name="Convene")
        due = datetime.fromtimestamp(task.due or 0).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        who = f"@{task.assignee}" if task.assignee else "(nobody)"
        text = (f"⏰ Task “{task.title}” for {who} is due at {due}." if kind == "before"
                else f"⚠️ Task “{task.title}” for {who} is overdue (due {due}).")
        channel = await self.resolve(updated.channel_id)
        if not await self.store.is_member(channel.id, SYSTEM_LOGIN):
            await self.store.add_members(channel.id, [SYSTEM_LOGIN])
        await self._insert(Message(id=new_id("m_"), channel_id=channel.id, author=SYSTEM_LOGIN, type="text",
                                   content=text, created_at=time.time(), thread=updated.id,
                                   mentions=(task.assignee,) if task.assignee else ()))
        if task.assignee:
            dm, _ = await self.direct_channel(SYSTEM_LOGIN, task.assignee, channel.org)
            await self._insert(Message(id=new_id("m_"), channel_id=dm.id, author=SYSTEM_LOGIN, type="text",
                                       content=f"{text} (in #{channel.name})", created_at=time.time()))
        return True

    # Reading ----------------------------------------------------------------------------------

    async def history(self, actor: User, ref: str, after: int | None, before: int | None, limit: int,
                      thread: str | None) -> tuple[Channel, list[Message]]:
        channel = await self.readable(actor, ref)
        return channel, await self.store.history(channel.id, after, before, limit, thread)

    async def sync(self, actor: User, since: int, limit: int) -> SyncResult:
        now = await self.store.current_seq()
        ids = await self.store.channel_ids_of(actor.login)
        changed = await self.store.changes(ids, since, limit)
        has_more = len(changed) >= limit
        last = changed[-1].seq if changed else since
        nxt = last if has_more else max(now, last, since)
        return SyncResult(updated=[m for m in changed if not m.deleted], deleted=[m for m in changed if m.deleted],
                          next=nxt, has_more=has_more)

    async def search(self, actor: User, query: SearchQuery, channel: str | None) -> list[Message]:
        if not query.text.strip():
            raise BadRequest("q must not be empty", field="q")
        if channel:
            ids = [(await self.readable(actor, channel)).id]
        else:
            ids = await self.store.channel_ids_of(actor.login)
        return await self.store.search(ids, query)

    # Files ------------------------------------------------------------------------------------

    async def _may_read_file(self, actor: User, meta: FileMeta) -> bool:
        if meta.org != actor.org:
            return False  # another organisation's file is not there, for its admins neither
        if meta.withdrawn:
            # Every message carrying it was recalled or expired: gone for everyone, its uploader too,
            # except the admins and owners who answer for legal holds and exports.
            return actor.role in ("admin", "owner")
        if meta.uploader == actor.login:
            return True
        for cid in meta.channels:
            if await self.store.is_member(cid, actor.login):
                return True
        return False

    async def upload_allowance(self, actor: User, guest_bytes_per_day: int, now: float) -> int | None:
        """Bytes a guest may still upload (their files of the last 24 h count); None: no quota.

        Guests come with any meeting link, so what they can make the server store is bounded."""
        if actor.role != "guest":
            return None
        left = guest_bytes_per_day - await self.store.uploaded_bytes(actor.login, now - 86400)
        if left <= 0:
            raise QuotaExceeded(f"guests may upload {guest_bytes_per_day} bytes a day", limit=guest_bytes_per_day)
        return left

    async def file_for_download(self, actor: User, file_id: str) -> FileMeta:
        meta = await self.store.get_file(file_id)
        if meta is None or not await self._may_read_file(actor, meta):
            raise FileNotFound(f"no file {file_id!r}")
        return meta

    async def _members_create_channels(self, actor: User, on: bool) -> None:
        """The setting as written: where the organisation overrode create_team_channel, members join or leave
        that row, so the setting and the table never disagree."""
        if self.permissions is None:
            return
        self.permissions.forget(actor.org)
        table = await self.permissions.table(actor.org)
        override = table.overrides.get(Action.CREATE_TEAM_CHANNEL)
        if override is not None and ("member" in override) != on:
            roles = override | {"member"} if on else override - {"member"}
            table = await self.permissions.change(actor, actor.login, {Action.CREATE_TEAM_CHANNEL: roles})
        # Open pages follow, as after PUT /v1/admin/permissions.
        await self.bus.publish({"type": "permissions", "org": table.org_id,
                                "roles": {role: table.held_by(role) for role in ROLES}})

    async def patch_org(self, actor: User, changes: dict[str, Any]) -> OrgSettings:
        require(actor, Action.EDIT_ORG, await self.table(actor.org))
        current = (await self.org(actor.org)).to_wire()
        for key, value in changes.items():
            if key == "allowed_file_types":
                if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                    raise InvalidField("allowed_file_types is a list of MIME types", field=key)
            elif key == "members_create_channels":
                if not isinstance(value, bool):
                    raise InvalidField(f"{key} must be true or false", field=key)
            elif key == "watermark":
                if value not in WATERMARK_MODES:
                    raise InvalidField("watermark is off, important or all", field=key)
            elif not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise InvalidField(f"{key} must be a non-negative integer", field=key)
            current[key] = value
        before = (await self.org(actor.org)).to_wire()
        org = OrgSettings.from_wire(current)
        await self.store.put_org(org, actor.org)
        if "members_create_channels" in changes:
            await self._members_create_channels(actor, org.members_create_channels)
        changed = sorted(k for k, v in org.to_wire().items() if before.get(k) != v)
        if changed:
            await self.audit.record(AuditEvent("org.settings", "org", actor.org, actor=actor.login, org_id=actor.org,
                                               before={k: before.get(k) for k in changed},
                                               after={k: org.to_wire()[k] for k in changed}))
        return org
