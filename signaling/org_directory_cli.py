"""`convene orgs set-directory ORG …`, `convene orgs set-sso ORG …` and `convene orgs show ORG`: an organisation's
own LDAP / AD directory and OpenID Connect provider (identity/org_directories.py). The default organisation's
are the server's --ldap-* / --oidc-* flags.

Secrets come on standard input (--ldap-bind-password-stdin, --oidc-client-secret-stdin), never as flags that `ps`
shows; they are stored sealed under the token secret, so give the same --token-secret-file as the server (or
the same data dir). A running server uses the new settings at the next sign-in or sync.

The flags given change those settings only; the rest stay as stored. A stored secret is never sent anywhere new:
changing --ldap-url or --ldap-bind-dn (or --oidc-issuer) without giving the secret again is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common.config import config_from_env
from common.errors import ConveneError, InvalidConfig, NotFound
from identity.org_directories import LDAP, LDAP_ATTRS, OIDC, OIDC_CLAIMS


def _secret_from_stdin(wanted: bool, what: str) -> str | None:
    if not wanted:
        return None
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise InvalidConfig(f"{what} on standard input is empty")
    return value


def _read_text(path: str | None, flag: str) -> str | None:
    if path is None:
        return None
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidConfig(f"{flag} {path}: {exc.strerror}") from None


def _ldap_settings(args: argparse.Namespace) -> dict[str, Any]:
    settings: dict[str, Any] = {"url": args.ldap_url, "bind_dn": args.ldap_bind_dn, "base_dn": args.ldap_base_dn,
                                "user_filter": args.ldap_user_filter,
                                "ca_pem": _read_text(args.ldap_ca_file, "--ldap-ca-file"),
                                "group_map": _read_text(args.ldap_group_map, "--ldap-group-map")}
    for name in LDAP_ATTRS:
        settings[f"attr_{name}"] = getattr(args, f"ldap_attr_{name}")
    return settings


def _oidc_settings(args: argparse.Namespace) -> dict[str, Any]:
    claims = {name: getattr(args, f"oidc_claim_{name}") for name in OIDC_CLAIMS
              if getattr(args, f"oidc_claim_{name}") is not None}
    scopes = None if args.oidc_scopes is None else [s.strip() for s in args.oidc_scopes.split(",") if s.strip()]
    return {"issuer": args.oidc_issuer, "client_id": args.oidc_client_id, "scopes": scopes, "claims": claims,
            "link_existing": args.oidc_link_existing}


def _run(args: argparse.Namespace, use: Callable[[Any, Any], Any]) -> Any:
    """Runs `use(OrgConnections, OrgDirectory)` on the configured store, with the server's sealing key."""
    from identity.org_directories import OrgConnections
    from identity.orgs import OrgDirectory
    from identity.sealed import SecretSealer
    from identity.secrets_store import server_secret
    from signaling.cli import _with_database

    config = config_from_env(data_dir=args.data_dir, database_url=args.database_url,
                             token_secret_file=args.token_secret_file)
    sealer = SecretSealer(server_secret(config.data_dir, config.token_secret_file))

    async def with_org(db: Any) -> Any:
        orgs = OrgDirectory(db)
        if not await orgs.exists(args.org) or args.org == "default":
            raise NotFound(f"no organisation {args.org!r} (the default one's directory and SSO are the server's "
                           "--ldap-* and --oidc-* flags)")
        return await use(OrgConnections(db, sealer), orgs)

    return _with_database(args, with_org)


def _report(work: Callable[[], Any]) -> int:
    try:
        out = work()
    except ConveneError as err:
        print(f"convene: {err.code}: {err.message}", file=sys.stderr)
        return 2
    print(json.dumps(out, ensure_ascii=False, indent=2))
    return 0


def _cmd_set(args: argparse.Namespace, kind: str, secret_wanted: bool, secret_name: str,
             settings: Callable[[argparse.Namespace], dict[str, Any]]) -> int:
    """Sets (or with --remove, removes) the organisation's connection of `kind`; the secret from standard input."""
    def work() -> Any:
        if args.remove:
            return _run(args, lambda conns, _: _removed(conns, args.org, kind))
        secret = _secret_from_stdin(secret_wanted, secret_name)
        wanted = settings(args)
        return _run(args, lambda conns, _: _put(conns, args.org, kind, wanted, secret))
    return _report(work)


def _cmd_set_directory(args: argparse.Namespace) -> int:
    return _cmd_set(args, LDAP, args.ldap_bind_password_stdin, "the bind password", _ldap_settings)


def _cmd_set_sso(args: argparse.Namespace) -> int:
    return _cmd_set(args, OIDC, args.oidc_client_secret_stdin, "the client secret", _oidc_settings)


def _cmd_show(args: argparse.Namespace) -> int:
    return _report(lambda: _run(args, lambda conns, _: conns.describe(args.org)))


async def _put(conns: Any, org: str, kind: str, settings: dict[str, Any], secret: str | None) -> dict[str, Any]:
    await conns.put(org, kind, settings, secret, actor="cli")
    out: dict[str, Any] = await conns.describe(org)
    return out


async def _removed(conns: Any, org: str, kind: str) -> dict[str, Any]:
    return {"org": org, kind: None, "removed": await conns.remove(org, kind)}


def _common(p: argparse.ArgumentParser, add_common: Callable[[argparse.ArgumentParser], None],
            add_database: Callable[[argparse.ArgumentParser], None]) -> None:
    p.add_argument("org", help="the organisation (not `default`, whose are the server's flags)")
    add_common(p)
    add_database(p)
    p.add_argument("--token-secret-file", default=None,
                   help="the server's token secret file, if it uses one: secrets are sealed under it")


def add_org_directory_parsers(orgs_sub: Any, add_common: Callable[[argparse.ArgumentParser], None],
                              add_database: Callable[[argparse.ArgumentParser], None]) -> None:
    d = orgs_sub.add_parser("set-directory", help="set (or --remove) an organisation's own LDAP / AD directory")
    _common(d, add_common, add_database)
    d.add_argument("--remove", action="store_true", help="remove the organisation's directory connection")
    d.add_argument("--ldap-url", metavar="URL", help="ldap://HOST[:PORT] (StartTLS) or ldaps://HOST[:PORT]")
    d.add_argument("--ldap-bind-dn", metavar="DN", help="the service account that searches")
    d.add_argument("--ldap-bind-password-stdin", action="store_true",
                   help="read its password from standard input (kept sealed; without it the stored one stays, "
                        "but a new --ldap-url or --ldap-bind-dn needs it again)")
    d.add_argument("--ldap-base-dn", metavar="DN", help="where people are searched")
    d.add_argument("--ldap-user-filter", metavar="FILTER", help="who may sign in (default (objectClass=inetOrgPerson))")
    for name in LDAP_ATTRS:
        d.add_argument(f"--ldap-attr-{name}", metavar="ATTR[,ATTR]", help=f"attribute(s) of the {name}")
    d.add_argument("--ldap-ca-file", metavar="PEM", help="CA certificates for its TLS (their text is stored)")
    d.add_argument("--ldap-group-map", metavar="FILE", help="TOML mapping its groups to roles and channels "
                                                            "(its text is stored)")
    d.set_defaults(func=_cmd_set_directory)

    s = orgs_sub.add_parser("set-sso", help="set (or --remove) an organisation's own OpenID Connect provider")
    _common(s, add_common, add_database)
    s.add_argument("--remove", action="store_true", help="remove the organisation's single sign-on")
    s.add_argument("--oidc-issuer", metavar="URL", help="the provider's issuer (https://)")
    s.add_argument("--oidc-client-id", metavar="ID",
                   help="the client registered with redirect URI https://<org host>/v1/auth/oidc/callback")
    s.add_argument("--oidc-client-secret-stdin", action="store_true",
                   help="read the client secret from standard input (kept sealed; without it the stored one "
                        "stays, but a new --oidc-issuer needs it again)")
    s.add_argument("--oidc-scopes", metavar="SCOPE,…", help="scopes to ask for (default openid,profile,email)")
    for name in OIDC_CLAIMS:
        s.add_argument(f"--oidc-claim-{name}", metavar="CLAIM", help=f"claim of the {name}")
    s.add_argument("--oidc-link-existing", action="store_true", default=None,
                   help="a first SSO sign-in may take over an existing account without a password or admin role")
    s.set_defaults(func=_cmd_set_sso)

    show = orgs_sub.add_parser("show", help="an organisation's directory and SSO settings (secrets never shown)")
    _common(show, add_common, add_database)
    show.set_defaults(func=_cmd_show)
