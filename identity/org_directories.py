"""An organisation's own directory connections (#10): its LDAP / AD directory and its OpenID Connect provider,
kept in table `org_directories` (one row per organisation and kind, `ldap` or `oidc`).

The default organisation's connections are the server's flags (--ldap-*, --oidc-*) and never a row here; every
other organisation gets its own with `convene orgs set-directory` / `set-sso`. The settings are JSON; the one
secret of each (the bind password, the client secret) is sealed (identity/sealed.py) and never shown.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.errors import InvalidConfig
from identity.directory import DirectorySettings
from identity.group_map import GroupMap, parse_group_map
from identity.oidc import CALLBACK_PATH, ClaimNames, OidcSettings, valid_issuer
from identity.orgs import valid_org_id
from identity.sealed import SecretSealer
from store.database import Database
from store.schema import org_directories

LDAP, OIDC = "ldap", "oidc"
LDAP_DEFAULTS: dict[str, str] = {
    "user_filter": "(objectClass=inetOrgPerson)", "attr_login": "uid", "attr_name": "displayName,cn",
    "attr_email": "mail", "attr_department": "departmentNumber,ou", "attr_title": "title"}
# The profile fields a directory attribute (--ldap-attr-NAME) or a provider's claim (--oidc-claim-NAME) fills.
LDAP_ATTRS = ("login", "name", "email", "department", "title")
OIDC_CLAIMS = LDAP_ATTRS
# A stored secret goes only where it went before: these settings changing need it given again.
SECRET_BOUND = {LDAP: ("url", "bind_dn"), OIDC: ("issuer",)}
SECRET_NAMES = {LDAP: "bind password", OIDC: "client secret"}
SECRET_FLAGS = {LDAP: "--ldap-bind-password-stdin", OIDC: "--oidc-client-secret-stdin"}


def merge_settings(stored: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The stored settings with the given ones over them; a value None was not given, and the claims merge
    name by name."""
    out = dict(stored)
    for key, value in given.items():
        if value is None:
            continue
        if key == "claims" and isinstance(value, dict):
            out["claims"] = {**(stored.get("claims") or {}), **value}
        else:
            out[key] = value
    return out


def _secret_moves(kind: str, stored: dict[str, Any], checked: dict[str, Any]) -> bool:
    """Whether the stored secret would now be sent somewhere (or as someone) it was not before."""
    return any((stored.get(k) or None) != (checked.get(k) or None) for k in SECRET_BOUND[kind])


@dataclass(frozen=True)
class StoredConnection:
    org: str
    kind: str
    settings: dict[str, Any]
    secret: str | None = field(repr=False)
    updated_at: float
    updated_by: str


def _names(spec: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in spec.split(",") if part.strip())


def check_ldap(settings: dict[str, Any]) -> dict[str, Any]:
    """The LDAP settings, defaults filled in; InvalidConfig for a URL that is not ldap(s)://, no base DN, a CA
    that is not PEM or a group map that does not parse."""
    out = {**LDAP_DEFAULTS, **{k: v for k, v in settings.items() if v is not None}}
    url = str(out.get("url") or "")
    if not url.lower().startswith(("ldap://", "ldaps://")):
        raise InvalidConfig("--ldap-url must be ldap://HOST[:PORT] (StartTLS) or ldaps://HOST[:PORT]", field="url")
    if not out.get("base_dn"):
        raise InvalidConfig("--ldap-base-dn is needed", field="base_dn")
    if out.get("ca_pem") and "-----BEGIN CERTIFICATE-----" not in str(out["ca_pem"]):
        raise InvalidConfig("--ldap-ca-file holds no PEM certificate", field="ca_file")
    if out.get("group_map"):
        parse_group_map(str(out["group_map"]), "--ldap-group-map")
    return out


def check_oidc(settings: dict[str, Any]) -> dict[str, Any]:
    out = {"scopes": ["openid", "profile", "email"], "link_existing": False,
           **{k: v for k, v in settings.items() if v is not None}}
    out["issuer"] = valid_issuer(str(out.get("issuer") or ""))
    if not out.get("client_id"):
        raise InvalidConfig("--oidc-client-id is needed", field="client_id")
    out["scopes"] = list(dict.fromkeys(("openid", *out["scopes"])))
    return out


def directory_settings(stored: StoredConnection) -> tuple[DirectorySettings, GroupMap]:
    s = stored.settings
    settings = DirectorySettings(
        url=s["url"], bind_dn=s.get("bind_dn") or None, bind_password=stored.secret, base_dn=s["base_dn"],
        user_filter=s["user_filter"], attr_login=_names(s["attr_login"]), attr_name=_names(s["attr_name"]),
        attr_email=_names(s["attr_email"]), attr_department=_names(s["attr_department"]),
        attr_title=_names(s["attr_title"]), ca_data=s.get("ca_pem") or None)
    group_map = parse_group_map(s["group_map"], f"organisation {stored.org}'s group map") if s.get(
        "group_map") else GroupMap()
    return settings, group_map


def oidc_settings(stored: StoredConnection, origin: str) -> OidcSettings:
    """The provider's settings, the redirect URI at `origin` (scheme://host of the organisation's own Host)."""
    s = stored.settings
    if not stored.secret:
        raise InvalidConfig(f"organisation {stored.org}'s single sign-on has no client secret")
    claims = ClaimNames(**{name: s.get("claims", {}).get(name, getattr(ClaimNames(), name)) for name in OIDC_CLAIMS})
    return OidcSettings(issuer=s["issuer"], client_id=s["client_id"], client_secret=stored.secret,
                        redirect_uri=origin.rstrip("/") + CALLBACK_PATH, scopes=tuple(s["scopes"]), claims=claims)


class OrgConnections:
    """Reads and writes the rows; the secrets are sealed on the way in and opened on the way out."""

    def __init__(self, db: Database, sealer: SecretSealer) -> None:
        self.db = db
        self.sealer = sealer

    @staticmethod
    def _context(org: str, kind: str) -> str:
        return f"org:{org}:{kind}"

    async def put(self, org: str, kind: str, settings: dict[str, Any], secret: str | None, actor: str,
                  now: float | None = None) -> StoredConnection:
        """Sets the organisation's connection of `kind`: the given settings (None: not given) over the stored
        ones, so changing one flag keeps the rest. `secret` None keeps the stored one, except where it would
        reach somebody else: a new URL or bind DN (LDAP) or issuer (OIDC) needs the secret given again
        (InvalidConfig `secret_required`), so an old password never goes to a new server."""
        valid_org_id(org)
        sealed = None if secret is None else self.sealer.seal(secret, self._context(org, kind))
        at = time.time() if now is None else now

        async def op(conn: AsyncConnection) -> None:
            t = org_directories
            old = (await conn.execute(select(t.c.settings, t.c.sealed_secret)
                                      .where(t.c.org_id == org, t.c.kind == kind))).first()
            stored = {} if old is None else json.loads(old.settings)
            merged = merge_settings(stored, settings)
            checked = check_ldap(merged) if kind == LDAP else check_oidc(merged)
            kept = None if old is None else old.sealed_secret
            if sealed is None and kept is not None and _secret_moves(kind, stored, checked):
                raise InvalidConfig(f"the {SECRET_NAMES[kind]} is not sent to a new "
                                    f"{' or '.join(SECRET_BOUND[kind])}: give it again "
                                    f"({SECRET_FLAGS[kind]})", field="secret_required")
            await conn.execute(delete(t).where(t.c.org_id == org, t.c.kind == kind))
            await conn.execute(t.insert().values(
                org_id=org, kind=kind, settings=json.dumps(checked, ensure_ascii=False),
                sealed_secret=sealed if sealed is not None else kept, updated_at=at, updated_by=actor))

        await self.db.write(op)
        stored_now = await self.get(org, kind)
        assert stored_now is not None
        return stored_now

    async def remove(self, org: str, kind: str) -> bool:
        async def op(conn: AsyncConnection) -> int:
            t = org_directories
            return (await conn.execute(delete(t).where(t.c.org_id == org, t.c.kind == kind))).rowcount or 0
        return bool(await self.db.write(op))

    async def get(self, org: str, kind: str) -> StoredConnection | None:
        t = org_directories
        row = await self.db.first(select(t).where(t.c.org_id == org, t.c.kind == kind))
        if row is None:
            return None
        secret = None if row.sealed_secret is None else self.sealer.open(row.sealed_secret, self._context(org, kind))
        return StoredConnection(org=org, kind=kind, settings=json.loads(row.settings), secret=secret,
                                updated_at=float(row.updated_at), updated_by=str(row.updated_by))

    async def version(self, org: str, kind: str) -> float | None:
        """When the connection last changed (None: there is none): callers rebuild a client when this moves."""
        t = org_directories
        row = await self.db.first(select(t.c.updated_at).where(t.c.org_id == org, t.c.kind == kind))
        return None if row is None else float(row.updated_at)

    async def orgs_with(self, kind: str) -> list[str]:
        t = org_directories
        rows = await self.db.all(select(t.c.org_id).where(t.c.kind == kind).order_by(t.c.org_id))
        return [str(r.org_id) for r in rows]

    async def describe(self, org: str) -> dict[str, Any]:
        """What `convene orgs show` prints: the settings, whether each secret is set, never the secret."""
        out: dict[str, Any] = {"org": org}
        for kind in (LDAP, OIDC):
            t = org_directories
            row = await self.db.first(select(t).where(t.c.org_id == org, t.c.kind == kind))
            if row is None:
                out[kind] = None
                continue
            settings = json.loads(row.settings)
            if settings.get("ca_pem"):
                settings["ca_pem"] = f"({settings['ca_pem'].count('BEGIN CERTIFICATE')} certificate(s))"
            if settings.get("group_map"):
                settings["group_map"] = f"({len(parse_group_map(settings['group_map']).rules)} group rule(s))"
            secret_name = "bind_password" if kind == LDAP else "client_secret"
            out[kind] = {**settings, secret_name: "(set, sealed)" if row.sealed_secret else "(not set)",
                         "updated_at": row.updated_at, "updated_by": row.updated_by}
        return out
