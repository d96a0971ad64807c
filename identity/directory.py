"""The company directory (LDAP / Active Directory): its users, its groups, and whether a password is a user's.

ldap3 is synchronous, so every method here blocks: callers run them on a thread (`asyncio.to_thread`). Each call
opens its own connection (StartTLS on ldap://, TLS from the start on ldaps://, the certificate checked), binds
as the service account to search, and for a sign-in binds once more as the user. Nothing is shared between
threads, and a directory that does not answer costs at most `timeout` seconds per call.

Every value a person typed reaches a filter only escaped (RFC 4515): a login of `*)(uid=*` matches no one.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import ssl
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from common.config import Config
from common.errors import DirectoryUnavailable, InvalidConfig, InvalidCredentials
from common.names import department_path

log = logging.getLogger(__name__)

ACCOUNTDISABLE = 0x2  # Active Directory's userAccountControl bit for a disabled account
PAGE_SIZE = 500  # OpenLDAP's default size limit is 500, AD's page limit 1000: page every listing
GROUP_MEMBER_ATTRS = ("member", "uniqueMember", "memberUid")
MAX_NESTING = 8  # groups inside groups are followed this many levels down (a guard against runaway trees)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a listing decodes: ldap3 allocates so many containers that collections
    run again and again, each holding the GIL (the event loop stalled 100-200 ms at a time over 10,000 people;
    with this, under 10 ms, and the listing takes half the time). What it allocates is freed by reference
    counting; the collector runs again as soon as the listing ends."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _names(spec: str) -> tuple[str, ...]:
    """"displayName,cn" -> ("displayName", "cn"): attribute fallbacks, the first an entry has wins."""
    return tuple(part.strip() for part in spec.split(",") if part.strip())


@dataclass(frozen=True)
class DirectorySettings:
    url: str
    bind_dn: str | None
    bind_password: str | None = field(repr=False)
    base_dn: str
    user_filter: str
    attr_login: tuple[str, ...]
    attr_name: tuple[str, ...]
    attr_email: tuple[str, ...]
    attr_department: tuple[str, ...]
    attr_title: tuple[str, ...]
    ca_file: Path | None = None
    ca_data: str | None = field(default=None, repr=False)  # PEM text (an organisation's stored CA), beside ca_file
    timeout: int = 5  # seconds (ldap3 packs it into a socket option: an int)

    @classmethod
    def from_config(cls, config: Config) -> DirectorySettings | None:
        if not config.ldap_url:
            return None
        if not config.ldap_url.lower().startswith(("ldap://", "ldaps://")):
            raise InvalidConfig("--ldap-url must be ldap://HOST[:PORT] (StartTLS) or ldaps://HOST[:PORT]")
        if not config.ldap_base_dn:
            raise InvalidConfig("--ldap-base-dn is needed with --ldap-url")
        return cls(url=config.ldap_url, bind_dn=config.ldap_bind_dn, bind_password=config.ldap_bind_password,
                   base_dn=config.ldap_base_dn, user_filter=config.ldap_user_filter,
                   attr_login=_names(config.ldap_attr_login), attr_name=_names(config.ldap_attr_name),
                   attr_email=_names(config.ldap_attr_email),
                   attr_department=_names(config.ldap_attr_department),
                   attr_title=_names(config.ldap_attr_title), ca_file=config.ldap_ca_file)

    @property
    def attributes(self) -> list[str]:
        wanted = [*self.attr_login, *self.attr_name, *self.attr_email, *self.attr_department, *self.attr_title,
                  "userAccountControl", "entryUUID", "objectGUID"]
        return list(dict.fromkeys(wanted))


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    external_id: str  # entryUUID (OpenLDAP) or objectGUID (AD), else the DN
    login: str
    name: str
    email: str
    department: str  # a path: "研发部/前端组"
    title: str
    disabled: bool  # AD's ACCOUNTDISABLE bit


def normalize_dn(dn: str) -> str:
    """A DN as groups list it and as searches return it compare equal: case and spaces after separators aside."""
    return ",".join(part.strip() for part in dn.lower().split(","))


def user_filter(base_filter: str, login_attr: str, login: str) -> str:
    """The configured filter AND login_attr=login, the login escaped per RFC 4515."""
    inner = base_filter if base_filter.startswith("(") else f"({base_filter})"
    return f"(&{inner}({login_attr}={escape_filter_chars(login)}))"


def _first(attrs: dict[str, Any], names: tuple[str, ...]) -> str:
    """The first of `names` the entry has, as text; `attrs` is keyed in lower case (see Directory._user)."""
    for name in names:
        value = attrs.get(name.lower())
        if isinstance(value, list):
            value = value[0] if value else None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if value not in (None, ""):
            return str(value).strip()
    return ""


def ou_path(dn: str, base_dn: str) -> str:
    """The department path an entry's place in the tree gives: its ou= parts below the base DN, outermost first
    ("uid=a,ou=前端组,ou=研发部,dc=example,dc=org" -> "研发部/前端组")."""
    parts = [p.strip() for p in dn.split(",")]
    base = len([p for p in base_dn.split(",") if p.strip()])
    below = parts[1:len(parts) - base] if base else parts[1:]
    return "/".join(p.split("=", 1)[1].strip() for p in reversed(below) if p.lower().startswith("ou="))


def _external_id(attrs: dict[str, Any], raw: dict[str, Any], dn: str) -> str:
    guid = raw.get("objectGUID") or raw.get("objectguid")
    if guid and isinstance(guid[0], bytes) and len(guid[0]) == 16:
        return str(uuid.UUID(bytes_le=guid[0]))
    return _first(attrs, ("entryUUID",)) or dn


def _disabled(attrs: dict[str, Any]) -> bool:
    text = _first(attrs, ("userAccountControl",))
    try:
        return bool(int(text) & ACCOUNTDISABLE) if text else False
    except ValueError:
        return False


class Directory:
    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings
        secure = settings.url.lower().startswith("ldaps://")
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                        ca_certs_file=str(settings.ca_file) if settings.ca_file else None,
                        ca_certs_data=settings.ca_data or None)
        self._server = ldap3.Server(settings.url, use_ssl=secure, tls=tls, get_info=ldap3.NONE,
                                    connect_timeout=settings.timeout)
        self._starttls = not secure
        self._searcher: Any = None  # the service connection sign-ins search with (find)
        self._searcher_lock = threading.Lock()
        self._closed = False  # replaced (its organisation's settings changed): no connection is kept any more

    def _open(self, dn: str | None, password: str | None) -> Any:
        """A connection over TLS, bound as `dn`; None when the directory refuses that password (for the service
        account a DirectoryUnavailable: a wrong bind password is the operator's problem, not the user's)."""
        conn = ldap3.Connection(self._server, user=dn, password=password, auto_bind=ldap3.AUTO_BIND_NONE,
                                read_only=True, receive_timeout=self.settings.timeout, raise_exceptions=False)
        try:
            conn.open()
            if self._starttls and not conn.start_tls():
                raise DirectoryUnavailable("the directory refused StartTLS")
            if conn.bind():
                return conn
        except LDAPException as exc:
            conn.unbind()
            log.warning("directory %s: %s", self.settings.url, type(exc).__name__)
            raise DirectoryUnavailable("the directory is not answering") from exc
        conn.unbind()
        return None

    def _service(self) -> Any:
        conn = self._open(self.settings.bind_dn, self.settings.bind_password)
        if conn is None:
            log.error("directory %s refused the service account's bind (check --ldap-bind-dn and its password)",
                      self.settings.url)
            raise DirectoryUnavailable("the directory refused the service account")
        return conn

    def _user(self, entry: dict[str, Any]) -> DirectoryUser:
        raw, dn = entry.get("raw_attributes") or {}, str(entry["dn"])
        attrs = {k.lower(): v for k, v in (entry.get("attributes") or {}).items()}  # names are case-insensitive
        s = self.settings
        department = ""
        for name in s.attr_department:  # "dn": the entry's ou= path (AD keeps departments as OUs)
            department = ou_path(dn, s.base_dn) if name.lower() == "dn" else _first(attrs, (name,))
            if department:
                break
        department = department_path(department)
        return DirectoryUser(dn=dn, external_id=_external_id(attrs, raw, dn), login=_first(attrs, s.attr_login),
                             name=_first(attrs, s.attr_name), email=_first(attrs, s.attr_email),
                             department=department, title=_first(attrs, s.attr_title), disabled=_disabled(attrs))

    def close(self) -> None:
        """Ends the kept search connection (at shutdown, or when the settings were replaced); a find still under
        way on this object afterwards uses a connection of its own and keeps none."""
        with self._searcher_lock:
            self._closed = True
            if self._searcher is not None:
                with contextlib.suppress(LDAPException):
                    self._searcher.unbind()
                self._searcher = None

    def _find_with(self, conn: Any, login: str) -> DirectoryUser | None:
        found: list[DirectoryUser] = []
        for name in self.settings.attr_login:
            ok = conn.search(self.settings.base_dn, user_filter(self.settings.user_filter, name, login),
                             ldap3.SUBTREE, attributes=self.settings.attributes, size_limit=2)
            if not ok and conn.result.get("result") not in (0, 4, 32):  # 4: size limit, 32: no such object
                raise DirectoryUnavailable("the directory search failed")
            found = [self._user(e) for e in conn.response or [] if e.get("type") == "searchResEntry"]
            if found:
                break
        return found[0] if len(found) == 1 else None

    def find(self, login: str) -> DirectoryUser | None:
        """The one entry that matches the filter with this login, or None (none, or ambiguous). Sign-ins share
        one service connection (one TLS handshake and bind saved on each), one search at a time; a connection
        the directory dropped meanwhile is opened again once."""
        with self._searcher_lock:
            if self._closed:
                conn = self._service()
                try:
                    return self._find_with(conn, login)
                except LDAPException as exc:
                    raise DirectoryUnavailable("the directory is not answering") from exc
                finally:
                    conn.unbind()
            for retry in (False, True):
                reused = self._searcher is not None
                try:
                    if self._searcher is None:
                        self._searcher = self._service()
                    return self._find_with(self._searcher, login)
                except (LDAPException, DirectoryUnavailable) as exc:
                    if self._searcher is not None:
                        with contextlib.suppress(LDAPException):
                            self._searcher.unbind()
                    self._searcher = None
                    if retry or not reused:
                        if isinstance(exc, DirectoryUnavailable):
                            raise
                        raise DirectoryUnavailable("the directory is not answering") from exc
        raise AssertionError("unreachable")

    def authenticate(self, login: str, password: str) -> DirectoryUser:
        """The user whose password this is. InvalidCredentials, alike, for a login the filter does not match
        (unknown, or no longer matching), a disabled account and a wrong password; DirectoryUnavailable when
        the directory does not answer."""
        user = self.find(login)
        if user is None or user.disabled or not password:  # an empty password is an anonymous bind: never
            self._bind_as_nobody(password)
            raise InvalidCredentials("wrong login or password")
        conn = self._open(user.dn, password)
        if conn is None:
            raise InvalidCredentials("wrong login or password")
        conn.unbind()
        return user

    def _bind_as_nobody(self, password: str) -> None:
        """The work of a wrong password (a connection, StartTLS, a refused bind) for a login that has no entry, so
        an unknown login answers in the same time as a known one and timing does not tell which logins exist."""
        with contextlib.suppress(DirectoryUnavailable, LDAPException):
            conn = self._open(f"cn=convene-no-such-user,{self.settings.base_dn}", password or "-")
            if conn is not None:
                conn.unbind()

    def users(self) -> list[DirectoryUser]:
        """Every entry the filter matches (disabled ones included, with `disabled` set), read page by page."""
        conn = self._service()
        try:
            with _gc_paused():
                return self._listing(conn)
        except LDAPException as exc:
            raise DirectoryUnavailable("the directory is not answering") from exc
        finally:
            conn.unbind()

    def _listing(self, conn: Any) -> list[DirectoryUser]:
        pages = conn.extend.standard.paged_search(
            self.settings.base_dn, self.settings.user_filter, ldap3.SUBTREE,
            attributes=self.settings.attributes, paged_size=PAGE_SIZE, generator=True)
        found = [self._user(entry) for entry in pages if entry.get("type") == "searchResEntry"]
        # A listing cut short is never taken for the whole directory: the sync would deactivate the rest.
        if conn.result.get("result") == 4:
            raise DirectoryUnavailable("the directory's size limit cut the listing short: let the service "
                                       "account read more (OpenLDAP: limits ... size.prtotal=unlimited)")
        if conn.result.get("result") not in (0, None):
            raise DirectoryUnavailable(f"the directory listing failed: {conn.result.get('description')}")
        return found

    def group_members(self, group_dns: list[str], users: set[str] | None = None) -> dict[str, set[str]]:
        """Each group's members, as normalized DNs (member, uniqueMember) and plain logins (memberUid), nested
        groups included: a member that is itself a group adds its own members, down to MAX_NESTING levels. Each
        group entry is read once per call however many paths lead to it (a diamond of groups inside groups costs
        one read per group, not one per path), and a cycle is followed no further. `users` are the normalized DNs
        of known people, whose entries need no reading to know they hold no members. A group that is not there
        has no members."""
        conn = self._service()
        expansion = _Expansion(lambda dn: self._direct_members(conn, dn), users or set())
        try:
            out = {normalize_dn(dn): expansion.members(dn) for dn in group_dns}
        except LDAPException as exc:
            raise DirectoryUnavailable("the directory is not answering") from exc
        finally:
            conn.unbind()
        if expansion.cut:  # once per sync, not once per path through the tree
            log.warning("directory groups nested deeper than %d levels are not followed (%d group(s) cut, e.g. %r)",
                        MAX_NESTING, len(expansion.cut), sorted(expansion.cut)[0])
        return out

    def _direct_members(self, conn: Any, dn: str) -> tuple[set[str], list[str]]:
        """The entry's own members (normalized DNs and logins) and the DN values among them (maybe groups);
        nothing for an entry that is not there or holds no member attribute (a person)."""
        members: set[str] = set()
        dn_values: list[str] = []
        if conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(GROUP_MEMBER_ATTRS)):
            for entry in conn.response or []:
                attrs = {k.lower(): v for k, v in (entry.get("attributes") or {}).items()}
                for name in GROUP_MEMBER_ATTRS:
                    values = attrs.get(name.lower()) or []
                    for value in values if isinstance(values, list) else [values]:
                        text = value.decode() if isinstance(value, bytes) else str(value)
                        if "=" in text:
                            members.add(normalize_dn(text))
                            dn_values.append(text)
                        else:
                            members.add(text.lower())
        elif conn.result.get("result") != 32:  # 32: no such object
            raise DirectoryUnavailable(f"reading group {dn!r} failed: {conn.result.get('description')}")
        return members, dn_values


class _Expansion:
    """The transitive members of groups, breadth first: each group is expanded at the shallowest level a path
    reaches it, once per top group, and its entry read once for all top groups (`reads`). The work is linear in
    the groups and member links below a top group, whatever the shape of the tree."""

    def __init__(self, read: Callable[[str], tuple[set[str], list[str]]], users: set[str]) -> None:
        self._read = read
        self._users = users
        self.reads: dict[str, tuple[set[str], list[str]]] = {}
        self.cut: set[str] = set()  # groups whose own groups lie past MAX_NESTING

    def direct(self, dn: str) -> tuple[set[str], list[str]]:
        key = normalize_dn(dn)
        if key not in self.reads:
            self.reads[key] = self._read(dn)
        return self.reads[key]

    def members(self, top: str) -> set[str]:
        found: set[str] = set()
        visited = {normalize_dn(top)}
        level = [top]
        for depth in range(MAX_NESTING + 1):
            following: list[str] = []
            for dn in level:
                members, dn_values = self.direct(dn)
                found |= members
                for value in dn_values:
                    child = normalize_dn(value)
                    if child in self._users or child in visited:
                        continue  # a person (no members to read), or a group already expanded
                    if depth == MAX_NESTING:
                        self.cut.add(dn)
                        continue
                    visited.add(child)
                    following.append(value)
            level = following
        return found
