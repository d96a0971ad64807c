"""The directory sync: people, departments, roles and synced channels follow the company directory (LDAP / AD).

One run lists every entry the filter matches (identity/directory.py, on a thread) and the mapped groups' members,
reads every user row once, and writes only what differs: new people are created, changed profiles updated,
and people who left the filter or carry AD's ACCOUNTDISABLE bit are deactivated through the same path as
`POST /v1/users/{login}/deactivate` (token epoch bumped, live chat and meeting sockets closed with 4410). A run in
which nothing changed writes nothing. Users made locally (source "local", or with a local password) are never
touched: local admins keep working when the directory is down or misconfigured.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from audit import AuditEvent
from chat.model import Channel, User, new_id
from chat.directory_status import DirectoryStatusStore, SyncRunning
from chat.service import DEPARTMENT, LOGIN, SYSTEM_LOGIN, ChatService
from common.errors import ConveneError, DirectoryUnavailable, InvalidCredentials
from common.names import server_reserved
from identity.directory import Directory, DirectoryUser, normalize_dn
from identity.group_map import GroupMap
from identity.orgs import DEFAULT_ORG
from identity.passwords import AccountStore
from store.database import Database
from store.upsert import insert_ignoring
from store.schema import accounts, chat_users

log = logging.getLogger(__name__)

BATCH = 500  # rows per write: one transaction stays short, the group-commit writer keeps serving others
PROFILE = ("role", "name", "email", "title", "department", "external_id", "directory_active", "source")
Deactivate = Callable[[str], Awaitable[Any]]
# A run that would deactivate more than this share of the directory's people (and more than MASS_MIN of them)
# stops before writing: an empty or short listing (a wrong base DN or filter, a directory restoring a backup)
# must not end everyone's access. An admin who means it deactivates them by other means.
MASS_SHARE, MASS_MIN = 0.5, 5


class MassDeactivation(ConveneError):
    code, status = "sync_refused", 409


@dataclass
class SyncReport:
    created: int = 0
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    skipped: int = 0  # entries left alone: a local account of that login, an invalid login, a duplicate
    members_added: int = 0
    members_removed: int = 0
    writes: int = 0  # rows written (users, accounts, memberships): 0 when nothing changed
    errors: list[str] = field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0

    def counts(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "deactivated": self.deactivated,
                "unchanged": self.unchanged}

    def to_wire(self) -> dict[str, Any]:
        out = asdict(self)
        out["errors"] = self.errors[:20]  # the first few say what is wrong; the count says how much
        out["error_count"] = len(self.errors)
        out["seconds"] = round(self.finished_at - self.started_at, 3)
        return out


@dataclass(frozen=True)
class _Row:
    login: str
    role: str
    name: str
    email: str
    title: str
    department: str
    external_id: str | None
    directory_active: bool | None
    source: str
    org: str = DEFAULT_ORG


@dataclass
class _Plan:
    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    to_deactivate: list[str] = field(default_factory=list)  # listed, but disabled (AD's ACCOUNTDISABLE)
    to_enable: list[str] = field(default_factory=list)  # deactivated by an earlier sync, enabled again
    gone: list[str] = field(default_factory=list)  # no longer matching the filter
    members_of: dict[str, set[str]] = field(default_factory=dict)  # enabled people -> their mapped groups


def _rows_by_login(rows: Sequence[Any]) -> dict[str, _Row]:
    return {r.login: _Row(login=r.login, role=r.role, name=r.name, email=r.email, title=r.title,
                          department=r.department, external_id=r.external_id,
                          directory_active=None if r.directory_active is None else bool(r.directory_active),
                          source=r.source, org=r.org_id) for r in rows}


def _wanted(entry: DirectoryUser, role: str, report: SyncReport) -> dict[str, Any]:
    department = entry.department
    if department and not DEPARTMENT.match(department):
        report.errors.append(f"{entry.login}: department {department[:80]!r} is not a path; left empty")
        department = ""
    return {"login": entry.login, "role": role, "name": (entry.name or entry.login)[:128],
            "email": entry.email[:320], "title": entry.title[:128], "department": department,
            "external_id": entry.external_id[:255], "directory_active": not entry.disabled, "source": "ldap"}


def _directory_may_admit(row: _Row, entry: DirectoryUser) -> bool:
    """Whether a directory entry may sign in as this existing row: only a row the directory sync keeps (never a
    local, SSO, guest or bot row), and only the same entry when the row remembers which (a recycled uid is not
    the person whose history the row holds)."""
    return row.role != "bot" and row.source == "ldap" and _same_entry(row, entry)


def _same_entry(row: _Row, entry: DirectoryUser) -> bool:
    """False when the row remembers another directory entry than this one (entryUUID / objectGUID / DN)."""
    return not row.external_id or not entry.external_id or row.external_id == entry.external_id[:255]


class DirectorySync:
    """One organisation's directory (`org`): the default one's comes from the flags, another's from its stored
    connection (identity/org_directories.py). Rows of another organisation are never touched: a login that
    another organisation holds is skipped by the sync and refused at sign-in."""

    def __init__(self, directory: Directory, group_map: GroupMap, db: Database, service: ChatService,
                 accounts: AccountStore, deactivate: Deactivate, org: str = DEFAULT_ORG) -> None:
        self.org = org
        self.directory = directory
        self.group_map = group_map
        self.db = db
        self.service = service
        self.accounts = accounts
        self.deactivate = deactivate  # the shared deactivation path (ChatApi.end_access, or the CLI's)
        self._lock = asyncio.Lock()
        self.status = DirectoryStatusStore(db)  # the same in every process (GET /v1/admin/ldap/status)

    @property
    def run_lock(self) -> asyncio.Lock:
        """Held while a sync runs: whoever retires this sync's directory waits for it."""
        return self._lock

    # -- sign-in ---------------------------------------------------------------------------------

    async def admit(self, login: str, password: str) -> tuple[User, int]:
        """A directory sign-in: binds as the user (DirectoryUnavailable / InvalidCredentials), then makes their
        user row if the sync has not yet (role member until it runs), and returns the user and the account's
        token epoch. A deactivated account stays refused until a sync finds it enabled again."""
        entry = await asyncio.to_thread(self.directory.authenticate, login, password)
        if not LOGIN.match(entry.login) or server_reserved(entry.login):  # cmd_/hook_: the server's bots' names
            raise InvalidCredentials("wrong login or password")
        # From here on the directory's own spelling of the login: the directory may match `ADMIN` or another
        # attribute's value to the entry `admin`, which must not reach a local account of that name.
        account = await self.accounts.get(entry.login)
        if account is not None and (not account.active or account.has_password):
            raise InvalidCredentials("wrong login or password")
        existing = await self._rows([entry.login])
        row = existing.get(entry.login)
        if row is not None and row.org != self.org:
            log.warning("directory sign-in of %r at organisation %s refused: the login is another organisation's",
                        entry.login, self.org)
            raise InvalidCredentials("wrong login or password")
        if row is not None and not _directory_may_admit(row, entry):
            log.warning("directory sign-in of %r refused: the login is a %s account of this server", entry.login,
                        row.source if row.source != "ldap" else "different directory entry's")
            raise InvalidCredentials("wrong login or password")
        if row is None:
            await self._insert([_wanted(entry, "member", SyncReport())], time.time())
        user = await self.service.store.get_user(entry.login)
        if user is None or user.org != self.org:  # another organisation took the login meanwhile
            raise InvalidCredentials("wrong login or password")
        return user, 0 if account is None else account.token_epoch

    # -- sync ------------------------------------------------------------------------------------

    async def run(self) -> SyncReport:
        async with self._lock:
            await self.status.started(self.org)  # the lease; SyncRunning (409) while another run holds it
            report = SyncReport(started_at=time.time())
            error: str | None = None
            try:
                await self._run(report)
            except ConveneError as exc:
                error = f"{exc.code}: {exc.message}"
                report.errors.append(error)
                raise
            finally:
                report.finished_at = time.time()
                log.info("directory sync: %s in %.1f s (%d errors)", report.counts(),
                         report.finished_at - report.started_at, len(report.errors))
                await self.status.finished(self.org, report.to_wire(), error)
                await self._audit(report)
            return report

    async def _audit(self, report: SyncReport) -> None:
        """One `directory.sync` event per run, with its counts (docs/audit.md): who came, changed and left."""
        await self.service.audit.record(AuditEvent(
            "directory.sync", "directory", self.directory.settings.url,
            after={**report.counts(), "errors": len(report.errors),
                   "seconds": round(report.finished_at - report.started_at, 3)}, org_id=self.org))

    async def _run(self, report: SyncReport) -> None:
        entries = await asyncio.to_thread(self.directory.users)
        dns = self.group_map.group_dns
        groups = await asyncio.to_thread(self._group_members, dns, entries) if dns else {}
        current = await self._rows(None)
        local_passwords = await self._local_password_logins()
        # Comparing 10,000 people is ~0.3 s of CPU: on a thread, so the event loop keeps serving meetings and chat.
        plan = await asyncio.to_thread(self._plan, entries, groups, current, local_passwords, report)
        ending = len(plan.to_deactivate) + len(plan.gone)
        known = sum(1 for r in current.values()
                    if r.org == self.org and r.source == "ldap" and r.directory_active is not False)
        if ending > MASS_MIN and ending > MASS_SHARE * known:
            raise MassDeactivation(f"this sync would deactivate {ending} of {known} directory users; nothing was "
                                   "changed (check --ldap-base-dn and --ldap-user-filter)")
        now = time.time()
        report.writes += await self._insert(plan.inserts, now)
        report.writes += await self._update(plan.updates, now)
        report.writes += await self._mark_gone(plan.gone, now)
        for login in plan.to_enable:
            await self.accounts.enable(login)
            report.writes += 1
        for login in [*plan.to_deactivate, *plan.gone]:
            await self.deactivate(login)  # the admin's path: epoch bumped, sockets closed
            report.deactivated += 1
            report.writes += 1
        await self._sync_channels(plan.members_of, report)

    def _group_members(self, dns: list[str], entries: list[DirectoryUser]) -> dict[str, set[str]]:
        """The mapped groups' members, nested groups included (blocking: on a thread). The listed people's DNs
        tell the directory which members are people, whose entries it need not read."""
        return self.directory.group_members(dns, {normalize_dn(e.dn) for e in entries})

    def _plan(self, entries: list[DirectoryUser], groups: dict[str, set[str]], current: dict[str, _Row],
              local_passwords: set[str], report: SyncReport) -> _Plan:
        """What to write, from the directory's entries and the rows we have (no I/O); counts go in `report`."""
        plan = _Plan()
        seen: set[str] = set()
        for entry in entries:
            row = current.get(entry.login)
            if self._refused(entry, row, seen, local_passwords, report):
                continue
            dn = normalize_dn(entry.dn)
            in_groups = {g for g, members in groups.items() if dn in members or entry.login.lower() in members}
            if not entry.disabled:
                plan.members_of[entry.login] = in_groups
            self._plan_entry(plan, entry, row, _wanted(entry, self._role(row, in_groups), report), report)
        plan.gone = [r.login for r in current.values() if r.org == self.org and r.source == "ldap"
                     and r.login not in seen and r.directory_active is not False]
        return plan

    def _refused(self, entry: DirectoryUser, row: _Row | None, seen: set[str], local_passwords: set[str],
                 report: SyncReport) -> bool:
        """Whether the sync leaves this entry alone (counted as skipped, and why in the errors where it is the
        directory's to fix). Every valid login is `seen` from here on, so a row left alone is not "gone" either."""
        if not LOGIN.match(entry.login) or entry.login in seen:
            problem: str | None = f"login {entry.login!r} is invalid or appears twice"
        else:
            seen.add(entry.login)
            problem = self._problem(entry, row, local_passwords)
        if problem is None:
            return False
        report.skipped += 1
        if problem:  # "": a local account or a bot of that login, nothing for the directory's people to fix
            report.errors.append(f"{entry.dn}: {problem}")
        return True

    def _problem(self, entry: DirectoryUser, row: _Row | None, local_passwords: set[str]) -> str | None:
        if server_reserved(entry.login):  # cmd_/hook_ name the server's own bots: a person never gets one
            return f"login {entry.login!r} is reserved for the server's own bots; left out"
        if row is not None and row.org != self.org:  # logins are unique across organisations
            return f"login {entry.login!r} belongs to another organisation; left alone"
        if entry.login in local_passwords or (row is not None and row.role == "bot"):
            return ""  # a local account (or a bot) of the same login: not the directory's to manage
        if row is not None and not _same_entry(row, entry):  # a recycled login: its history is the old entry's
            return (f"login {entry.login!r} belongs to another directory entry ({(row.external_id or '')[:80]!r}); "
                    "left alone until an administrator sorts it out")
        return None

    @staticmethod
    def _plan_entry(plan: _Plan, entry: DirectoryUser, row: _Row | None, wanted: dict[str, Any],
                    report: SyncReport) -> None:
        """One accepted entry's part of the plan: made, changed, ended, enabled again, or nothing."""
        if row is None:
            if not entry.disabled:  # a disabled entry never seen before: nothing to make, nothing to end
                plan.inserts.append(wanted)
                report.created += 1
            return
        changed = any(getattr(row, k) != wanted[k] for k in PROFILE)
        if changed:
            plan.updates.append(wanted)
        if entry.disabled and row.directory_active is not False:
            plan.to_deactivate.append(entry.login)  # counted as deactivated once it is done
        elif not entry.disabled and row.directory_active is False:
            plan.to_enable.append(entry.login)
            report.updated += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1

    def _role(self, row: _Row | None, in_groups: set[str]) -> str:
        if row is not None and row.role in ("owner", "bot"):
            return row.role  # the directory never demotes an owner nor turns a bot into a person
        if self.group_map.maps_roles:
            return self.group_map.role_for(in_groups)
        return row.role if row is not None else "member"

    # -- reads and writes ------------------------------------------------------------------------

    async def _rows(self, logins: list[str] | None) -> dict[str, _Row]:
        c = chat_users.c
        stmt = select(c.login, c.role, c.name, c.email, c.title, c.department, c.external_id, c.directory_active,
                      c.source, c.org_id)
        if logins is not None:
            stmt = stmt.where(c.login.in_(logins))
        rows = await self.db.all(stmt)
        return await asyncio.to_thread(_rows_by_login, rows)  # 10,000 of them: ~70 ms, off the event loop


    async def _local_password_logins(self) -> set[str]:
        rows = await self.db.all(select(accounts.c.login).where(accounts.c.password_hash.is_not(None)))
        return {r.login for r in rows}

    async def _batched(self, stmt: Any, rows: list[dict[str, Any]]) -> int:
        for start in range(0, len(rows), BATCH):
            chunk = rows[start:start + BATCH]

            async def op(conn: AsyncConnection, chunk: list[dict[str, Any]] = chunk) -> None:
                await conn.execute(stmt, chunk)
            await self.db.write(op)
        return len(rows)

    async def _insert(self, rows: list[dict[str, Any]], now: float) -> int:
        """New users; one made meanwhile by a sign-in (or another process's sync) is left as it is."""
        values = [{**r, "source": "ldap", "created_at": now, "updated_at": now, "org_id": self.org} for r in rows]
        return await self._batched(insert_ignoring(self.db, chat_users), values)

    async def _update(self, rows: list[dict[str, Any]], now: float) -> int:
        c = chat_users.c
        stmt = (update(chat_users).where(c.login == bindparam("b_login"))
                .values({k: bindparam(f"b_{k}") for k in (*PROFILE, "updated_at")}))
        values = [{f"b_{k}": v for k, v in {**r, "updated_at": now}.items()} for r in rows]
        return await self._batched(stmt, values)

    async def _mark_gone(self, logins: list[str], now: float) -> int:
        stmt = (update(chat_users).where(chat_users.c.login == bindparam("b_login"))
                .values(directory_active=False, updated_at=now))
        return await self._batched(stmt, [{"b_login": login} for login in logins])

    # -- channels --------------------------------------------------------------------------------

    async def _sync_channels(self, members_of: dict[str, set[str]], report: SyncReport) -> None:
        """Each mapped channel gets the members of its groups; a synced one also loses everyone else."""
        store = self.service.store
        for name, (group_dns, synced) in self.group_map.channels().items():
            wanted = {login for login, groups in members_of.items() if groups & group_dns}
            channel = await store.find_channel(name, self.org)
            if channel is None:
                channel = await self._create_channel(name)
                report.writes += 1
            elif channel.kind != "team":
                report.errors.append(f"channel {name!r} is a {channel.kind} channel; the group map fills team ones")
                continue
            present = set(await store.members(channel.id))
            add = sorted(wanted - present)
            remove = sorted(present - wanted) if synced else []
            if add:
                await store.add_members(channel.id, add)
            if remove:
                await store.remove_members(channel.id, remove)
            if add or remove:
                await self.service.bus.publish({"type": "members", "channel": channel.id, "added": add,
                                                "removed": remove})
            report.members_added += len(add)
            report.members_removed += len(remove)
            report.writes += len(add) + len(remove)

    async def _create_channel(self, name: str) -> Channel:
        channel = Channel(id=new_id("c_"), name=name, kind="team", created_by=SYSTEM_LOGIN, created_at=time.time(),
                          topic="", org=self.org)
        await self.service.store.create_channel(channel, [])
        await self.service.bus.publish({"type": "channel", "channel": channel.id, "data": channel.to_wire()})
        return channel


async def sync_loop(syncs: Callable[[], Awaitable[list[DirectorySync]]], interval_seconds: float,
                    first_delay: float = 5.0) -> None:
    """Runs every configured organisation's sync soon after start, then every interval, one after another; a
    failed run is logged and retried next time, and does not keep the other organisations from theirs."""
    await asyncio.sleep(first_delay)
    while True:
        try:
            due = await syncs()
        except Exception:  # noqa: BLE001 - a store that does not answer: try again next time
            log.exception("listing the organisations' directories failed")
            due = []
        for sync in due:
            try:
                await sync.run()
            except SyncRunning:  # another process's run of this organisation: one is enough
                log.info("directory sync of organisation %s skipped: another process is running it", sync.org)
            except DirectoryUnavailable as exc:
                log.warning("directory sync of organisation %s failed: %s", sync.org, exc.message)
            except Exception:  # noqa: BLE001 - one bad run must not end the loop
                log.exception("directory sync of organisation %s failed", sync.org)
        await asyncio.sleep(interval_seconds)


async def describe_shared(sync: DirectorySync | None, url: str | None, interval_seconds: float) -> dict[str, Any]:
    """GET /v1/admin/ldap/status: whether a directory is set, the schedule, and the last run (counts, errors) and
    whether one runs now, read from the store: every process answers alike, whichever ran the sync
    (chat/directory_status.py)."""
    if sync is None:
        return {"configured": False}
    shared = await sync.status.read(sync.org)
    return {"configured": True, "url": url, "interval_seconds": interval_seconds, "running": shared.running,
            "last_run": shared.last_run, "last_error": shared.last_error, "groups_mapped": len(sync.group_map.rules)}
