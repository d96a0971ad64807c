"""Organisations (tenants): which organisation a request belongs to, and the names kept apart per organisation.

The built-in organisation `default` has no row: it serves every Host that no organisation lists, so a server
where nobody ran `convene orgs add` behaves as before. `convene orgs add NAME --host HOST` adds one; the front
door's middleware (`org_middleware`) resolves each request's Host to its organisation once, and everything after
reads it with `request_org(request)`.

Room and channel names are the organisation's own: two organisations may both hold a room `standup` or a channel
`general`. Inside the server such a name is *qualified*, `org~name` for an organisation other than `default`
(`~` is in no valid room or channel name), in the SFU's room registry, the meeting ledger, transcripts and the
channel table; clients always see the plain name (`unqualify`).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import InvalidField, NotFound
from store.database import Database
from store.schema import DEFAULT_ORG as DEFAULT_ORG  # the built-in organisation, named where tables are
from store.schema import organisation_hosts, organisations

log = logging.getLogger("convene.orgs")

SEPARATOR = "~"
ORG_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]{0,252}[a-z0-9])?$")
CACHE_SECONDS = 2.0
_REQUEST_KEY = web.RequestKey("org", str)


def valid_org_id(value: object) -> str:
    if not isinstance(value, str) or not ORG_ID.match(value) or value == DEFAULT_ORG:
        raise InvalidField("an organisation is 1-63 lower-case letters, digits or '-' (not 'default')",
                           field="name")
    return value


def host_name(value: str) -> str:
    """A Host header's name: lower case, without its port (IPv6 literals keep their brackets)."""
    host = value.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def qualify(org: str, name: str) -> str:
    """The server-internal name of `name` in organisation `org` (`default`'s names stay as they are)."""
    return name if org == DEFAULT_ORG else f"{org}{SEPARATOR}{name}"


def unqualify(stored: str) -> tuple[str, str]:
    """(organisation, plain name) of a server-internal name."""
    org, sep, name = stored.partition(SEPARATOR)
    return (org, name) if sep else (DEFAULT_ORG, stored)


def plain(stored: str) -> str:
    return unqualify(stored)[1]


def org_of(stored: str) -> str:
    return unqualify(stored)[0]


def request_org(request: web.Request) -> str:
    """The organisation the request's Host names (`default` before the middleware ran or where none is set)."""
    org = request.get(_REQUEST_KEY)
    return org if isinstance(org, str) else DEFAULT_ORG


def org_base_url(request: web.Request, default_url: str) -> str:
    """Where links for the request's organisation point: `default_url` (the configured public URL) for the default
    one, else the organisation's own Host as the request reached it."""
    return default_url if request_org(request) == DEFAULT_ORG else f"{request.scheme}://{request.host}"


def org_name(request: web.Request, name: str) -> str:
    """`name` (a room or channel a client named) as the server-internal name in the request's organisation."""
    return qualify(request_org(request), name)


def same_org(request: web.Request, org: str, what: str = "resource") -> None:
    """404 `not_found` unless `org` is the request's organisation: another organisation's data is not there."""
    require_org(org, request_org(request), what)


def require_org(found: str, org: str, what: str = "resource") -> None:
    """404 `not_found` unless `found` (what a key, token or row belongs to) is `org`."""
    if found != org:
        raise NotFound(f"no such {what}")


@dataclass(frozen=True)
class Organisation:
    org_id: str
    name: str
    created_at: float
    hosts: tuple[str, ...]


class OrgDirectory:
    """The organisations and their Host names, read from the store (cached for CACHE_SECONDS: an organisation
    added with the CLI while the server runs serves its Host within that time)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._hosts: dict[str, str] = {}
        self._until = 0.0

    async def org_for_host(self, host: str) -> str:
        if time.monotonic() >= self._until:
            await self._refresh()
        return self._hosts.get(host_name(host), DEFAULT_ORG)

    async def _refresh(self) -> None:
        """Reads the Host map. A store that does not answer keeps the map last read (empty before the first read:
        every Host is then `default`), so /readyz can say the store is down instead of every request failing; that
        leaks nothing, since credentials are bound to their organisation and every read of data needs the store."""
        try:
            rows = await self._db.all(select(organisation_hosts.c.host, organisation_hosts.c.org_id))
        except Exception:  # noqa: BLE001 - whatever the store raises, the map stays as it was
            log.warning("reading the organisations' hosts failed; keeping the last map", exc_info=True)
            self._until = time.monotonic() + 1.0
            return
        self._hosts = {str(r.host): str(r.org_id) for r in rows}
        self._until = time.monotonic() + CACHE_SECONDS

    async def add(self, org_id: str, hosts: list[str], now: float | None = None) -> Organisation:
        valid_org_id(org_id)
        names = [host_name(h) for h in hosts]
        for h in names:
            if not HOST.match(h):
                raise InvalidField(f"{h!r} is not a host name", field="host")
        created = time.time() if now is None else now

        async def op(conn: AsyncConnection) -> None:
            exists = (await conn.execute(select(organisations.c.org_id)
                                         .where(organisations.c.org_id == org_id))).first()
            if exists is None:
                await conn.execute(organisations.insert().values(org_id=org_id, name=org_id, created_at=created))
            taken = (await conn.execute(select(organisation_hosts.c.host, organisation_hosts.c.org_id)
                                        .where(organisation_hosts.c.host.in_(names)))).all()
            for h, other in taken:
                if other != org_id:
                    raise InvalidField(f"host {h!r} already serves organisation {other!r}", field="host")
            for h in sorted(set(names) - {str(h) for h, _ in taken}):
                await conn.execute(organisation_hosts.insert().values(host=h, org_id=org_id))

        await self._db.write(op)
        self._until = 0.0
        log.info("organisation %s serves %s", org_id, ", ".join(names) or "no host yet")
        return next(o for o in await self.list() if o.org_id == org_id)

    async def exists(self, org_id: str) -> bool:
        if org_id == DEFAULT_ORG:
            return True
        async with self._db.read() as conn:
            return (await conn.execute(select(organisations.c.org_id)
                                       .where(organisations.c.org_id == org_id))).first() is not None

    async def list(self) -> list[Organisation]:
        async with self._db.read() as conn:
            orgs = (await conn.execute(select(organisations).order_by(organisations.c.org_id))).all()
            hosts = (await conn.execute(select(organisation_hosts).order_by(organisation_hosts.c.host))).all()
        return [Organisation(str(o.org_id), str(o.name), float(o.created_at),
                             tuple(str(h.host) for h in hosts if h.org_id == o.org_id)) for o in orgs]


def org_middleware(directory: OrgDirectory) -> Middleware:
    """Stores the request's organisation (from its Host, after the proxy middleware) for `request_org`."""

    @web.middleware
    async def resolve_org(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[_REQUEST_KEY] = await directory.org_for_host(request.host or "")
        return await handler(request)

    return resolve_org
