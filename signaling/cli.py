"""`convene` command line: serve, token, keys (create, list, revoke), db, audit (verify), users, loadtest."""

from __future__ import annotations

import argparse
import gc
import logging
import sys
from collections.abc import Sequence
from typing import Any

from common.config import config_from_env, parse_port_range, split_list, split_origins
from common.errors import InvalidConfig


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="state directory (secrets, keys, chat, transcripts)")


def _cmd_serve(args: argparse.Namespace) -> int:
    from chat.directory_cli import ldap_overrides

    from aiohttp import web

    from common.gc_schedule import FullCollectionSchedule
    from signaling.access_log import RedactingAccessLogger
    from signaling.app import create_app
    from signaling.tls import banner as tls_banner
    from signaling.tls import prepare as prepare_tls

    worker_id = args.worker_id or ("w0" if args.workers > 1 else None)
    config = config_from_env(
        host=args.host, port=args.port, data_dir=args.data_dir, redis_url=args.redis, public_url=args.public_url,
        worker_id=worker_id, workers=args.workers, per_worker=args.per_worker, media_only=args.media_only or None,
        asr_model=args.asr_model, asr_language=args.asr_language, asr_threads=args.asr_threads,
        asr_beam=args.asr_beam, captions_default=False if args.no_captions else None,
        allowed_origins=split_origins(args.allowed_origins) if args.allowed_origins is not None else None,
        ice_allow_link_local=args.ice_allow_link_local or None, database_url=args.database_url,
        hooks_allow_private=args.hooks_allow_private or None, metrics_token_file=args.metrics_token_file,
        stats_rollup_seconds=None if args.stats_rollup_minutes is None else args.stats_rollup_minutes * 60,
        token_secret_file=args.token_secret_file, files_dir=args.files_dir,
        attendees_see_records=args.attendees_see_records or None,
        notes_autopublish_seconds=None if args.notes_autopublish_minutes is None else args.notes_autopublish_minutes * 60,
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_self_signed=(args.tls == "self-signed") or None,
        trusted_proxies=split_list(args.trusted_proxies) if args.trusted_proxies is not None else None,
        announce_ip=args.announce_ip, rtc_ips=args.rtc_ips, rtc_port_range=args.rtc_port_range,
        turn_urls=args.turn_url, turn_secret=args.turn_secret, stun_url=args.stun_url,
        **ldap_overrides(args),
        **_oidc_values(args),
    )
    logging.basicConfig(level=logging.INFO if not args.verbose else logging.DEBUG,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tls = prepare_tls(config)
        if tls is not None:
            config = tls[0]  # with the certificate's paths: spawned workers load the same files
        app = create_app(config)  # a --trusted-proxies entry that is no CIDR fails here
    except InvalidConfig as exc:
        print(f"convene: {exc.message}", file=sys.stderr)
        return 2
    if config.workers > 1 and not config.media_only:
        from signaling.workers_cli import spawn_workers

        spawn_workers(app, config)
    if not config.media_only:
        print(f"Convene is running. Open {config.url}/ in a browser.", flush=True)
        if tls is not None:
            print("\n".join(tls_banner(tls[2])), flush=True)
    # What exists now lives as long as the server: keep it out of every later full collection, whose
    # pauses stop all forwarding (~0.5 s at a hundred participants before packet caches held tuples).
    gc.freeze()
    if config.scheduled_full_gc:
        app.cleanup_ctx.append(FullCollectionSchedule().ctx)
    web.run_app(app, host=config.host, port=config.port, print=None, shutdown_timeout=5,
                access_log_class=RedactingAccessLogger, ssl_context=tls[1] if tls is not None else None)
    return 0


def _cmd_token(args: argparse.Namespace) -> int:
    from common.names import display_name
    from identity.meetings import invite
    from identity.tokens import Grants
    from signaling.rest import valid_room_name

    config = config_from_env(data_dir=args.data_dir, public_url=args.url, database_url=args.database_url,
                             token_secret_file=args.token_secret_file)
    grants = Grants(moderator=args.moderator, publish=not args.no_publish)
    token = invite(config.data_dir, valid_room_name(args.room), args.identity,
                   name=display_name(args.name or args.identity), grants=grants,
                   ttl_seconds=args.ttl or config.default_token_ttl_seconds, database_url=config.database_url,
                   secret_file=config.token_secret_file)
    # In the fragment: browsers never send it to a server, so it stays out of access logs.
    print(f"{config.url}/r/{args.room}#token={token}")
    return 0


def _with_database(args: argparse.Namespace, use: Any) -> Any:
    """Runs `use(Database)` on the configured store (opened, migrated, closed)."""
    import asyncio

    from store.database import Database

    config = config_from_env(data_dir=args.data_dir, database_url=args.database_url)

    async def run() -> Any:
        db = Database.for_config(config.database_url, config.data_dir)
        await db.open()
        try:
            return await use(db)
        finally:
            await db.close()

    return asyncio.run(run())


def _with_keys(args: argparse.Namespace, use: Any) -> Any:
    """Runs `use(ApiKeyStore)` on the configured store."""
    from identity.apikeys import ApiKeyStore

    return _with_database(args, lambda db: use(ApiKeyStore(db)))


def _cmd_keys_create(args: argparse.Namespace) -> int:
    if args.owner and args.role != "bot":
        print("--owner is for bot keys (--role bot)", file=sys.stderr)
        return 2
    signing: list[str] = []

    async def make(keys: Any) -> Any:
        if args.owner:  # the bot's owner: while that account is deactivated, the bot's keys fail (bot_disabled)
            from sqlalchemy import select

            from identity.bots import BotRegistry
            from identity.sealed import SecretSealer
            from identity.secrets_store import server_secret
            from store.schema import chat_users
            async with keys.db.read() as conn:
                known = (await conn.execute(select(chat_users.c.login).where(chat_users.c.login == args.owner))).first()
            if known is None:
                raise SystemExit(f"no user {args.owner!r} to own the bot (convene users add {args.owner})")
            config = config_from_env(data_dir=args.data_dir, token_secret_file=args.token_secret_file)
            sealer = SecretSealer(server_secret(config.data_dir, config.token_secret_file))  # seals its signing secret
            bots = BotRegistry(keys.db, sealer)
            bot = await bots.get(args.name)
            if bot is None:
                signing.append((await bots.create(args.name, args.owner))[1])
            elif bot.owner != args.owner:
                raise SystemExit(f"{args.name!r} is already a bot of {bot.owner!r}")
        if args.org != "default":
            from identity.orgs import OrgDirectory

            if not await OrgDirectory(keys.db).exists(args.org):
                raise SystemExit(f"no organisation {args.org!r} (convene orgs add {args.org} --host HOST)")
        return await keys.create(args.name, args.role, org=args.org)

    key, secret = _with_keys(args, make)
    print(secret)
    print(f"(key {key.key_id} for '{key.name}', role {key.role}; shown once, keep it safe)", file=sys.stderr)
    if signing:
        print(f"(owner {args.owner}; signing secret for its integration URLs, shown once: {signing[0]})",
              file=sys.stderr)
    return 0


def _cmd_keys_list(args: argparse.Namespace) -> int:
    import time

    def when(t: float | None) -> str:
        return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))

    for key in _with_keys(args, lambda keys: keys.list()):
        state = "active" if key.revoked_at is None else f"revoked {when(key.revoked_at)}"
        print(f"{key.key_id}\t{key.name}\t{key.role}\tcreated {when(key.created_at)}\t{state}")
    return 0


def _cmd_keys_revoke(args: argparse.Namespace) -> int:
    from common.errors import NotFound

    try:
        key = _with_keys(args, lambda keys: keys.revoke(args.key_id))
    except NotFound as exc:
        print(f"convene: {exc.message}", file=sys.stderr)
        return 1
    print(f"revoked key {key.key_id} ('{key.name}', role {key.role})")
    return 0


def _add_database(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", default=None,
                   help="postgresql://user@host/db (default: SQLite in the data dir; env CONVENE_DATABASE_URL)")


def _add_secret(p: argparse.ArgumentParser) -> None:
    p.add_argument("--token-secret-file", default=None,
                   help="the token secret (64 hex digits) shared by several machines (default: made once in the "
                        "data dir; env CONVENE_TOKEN_SECRET_FILE)")


def _cmd_db(args: argparse.Namespace) -> int:
    import asyncio

    from signaling.legacy_import import import_legacy
    from store.database import Database
    from store.migrate import current, head, upgrade

    config = config_from_env(data_dir=args.data_dir, database_url=args.database_url)

    async def run() -> str:
        db = Database.for_config(config.database_url, config.data_dir)
        await db.open(migrate=False)
        try:
            if args.db_command == "upgrade":
                before, after = await upgrade(db.engine)
                said = f"{before or '(empty)'} -> {after}" if before != after else f"{after} (up to date)"
                imported = await import_legacy(db, config.data_dir)
                return said + (f"\n{imported.summary()}" if imported else "")
            rev = await current(db.engine)
            return f"{rev or '(empty)'}{' (head)' if rev == head() else ' (head is ' + head() + ')'}"
        finally:
            await db.close()

    print(asyncio.run(run()))
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    """Exit 0: the audit chain is intact; 1: the first bad row is named (edited, deleted or reordered)."""
    from audit.log import AuditLog
    from audit.verify import verify_log

    verdict = _with_database(args, lambda db: verify_log(AuditLog(db)))
    if verdict.ok:
        print(f"audit log intact: {verdict.rows} rows")
        return 0
    print(f"audit log BROKEN at row {verdict.bad_seq}: {verdict.reason} ({verdict.rows} rows before it intact)")
    return 1


def _with_chat_files(args: argparse.Namespace, use: Any) -> Any:
    """Runs `use(Database, FileVault, Recorder)`: the store, the file vault and the operator's audit recorder."""
    from pathlib import Path

    from audit import Recorder
    from chat.config import ChatConfig
    from chat.files import FileVault

    config = config_from_env(data_dir=args.data_dir, database_url=args.database_url,
                             files_dir=Path(args.files_dir) if args.files_dir else None)
    vault = FileVault(ChatConfig.from_config(config).files_dir)
    return _with_database(args, lambda db: use(db, vault, Recorder.on(db)))


def _cmd_export(args: argparse.Namespace) -> int:
    """`convene export --out FILE`: versioned JSONL plus FILE.files/ (docs/export.md)."""
    from pathlib import Path

    from chat.export import export_store, files_dir_of

    out = Path(args.out)
    counts = _with_chat_files(args, lambda db, vault, recorder: export_store(db, vault, out, recorder))
    print(f"exported to {out} (files in {files_dir_of(out)}): {counts.summary()}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    """`convene import FILE` (our export) or `convene import --slack EXPORT.zip`: idempotent, prints counts."""
    from pathlib import Path

    from chat.import_jsonl import import_file
    from chat.slack_import import import_slack
    from common.errors import ConveneError

    run = import_slack if args.slack else import_file
    try:
        counts = _with_chat_files(args, lambda db, vault, recorder: run(db, vault, Path(args.file), recorder))
    except ConveneError as exc:
        print(f"convene: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    print("\n".join(counts.lines()))
    print(f"imported {counts.created_total()} new records in {counts.seconds:.1f} s")
    return 0


def _port_range(text: str) -> tuple[int, int]:
    try:
        return parse_port_range(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_ice(serve: argparse.ArgumentParser) -> None:
    """ICE on real networks (docs/deploy.md "NAT" and "TURN")."""
    serve.add_argument("--announce-ip", default=None, metavar="IP",
                       help="host candidates name this address (the public one of a 1:1 NAT) [CONVENE_ANNOUNCE_IP]")
    serve.add_argument("--rtc-ips", type=split_list, default=None, metavar="CIDR,…",
                       help="only these local addresses gather ICE candidates (default: all; 127.0.0.1 only when "
                            "serving on loopback) [CONVENE_RTC_IPS]")
    serve.add_argument("--rtc-port-range", type=_port_range, default=None, metavar="FIRST-LAST",
                       help="UDP ports ICE binds, e.g. 50000-60000 (default: any) [CONVENE_RTC_PORT_RANGE]")
    serve.add_argument("--turn-url", type=split_list, default=None, metavar="URL,…",
                       help="TURN servers handed to clients, e.g. turn:HOST:3478?transport=udp,"
                            "turns:HOST:443?transport=tcp [CONVENE_TURN_URLS]")
    serve.add_argument("--turn-secret", default=None, metavar="S",
                       help="the TURN server's use-auth-secret; clients get credentials made from it "
                            "(better: CONVENE_TURN_SECRET, which ps does not show)")
    serve.add_argument("--stun-url", default=None, metavar="URL",
                       help="a STUN server for clients and the server, e.g. stun:HOST:3478 [CONVENE_STUN_URL]")


def _add_oidc(serve: argparse.ArgumentParser) -> None:
    """Single sign-on through an OpenID Connect provider (identity/oidc.py)."""
    serve.add_argument("--oidc-issuer", default=None, metavar="URL",
                       help="the provider's issuer, e.g. https://login.example.com/realms/corp; its "
                            "/.well-known/openid-configuration is read [CONVENE_OIDC_ISSUER]")
    serve.add_argument("--oidc-client-id", default=None, metavar="ID",
                       help="this server's client id at the provider, whose redirect URI is "
                            "<public URL>/v1/auth/oidc/callback [CONVENE_OIDC_CLIENT_ID]")
    serve.add_argument("--oidc-client-secret", default=None, metavar="S",
                       help="its client secret (better: CONVENE_OIDC_CLIENT_SECRET, which ps does not show)")
    serve.add_argument("--oidc-scopes", type=split_list, default=None, metavar="SCOPE,…",
                       help="scopes asked for (default openid,profile,email; openid is always asked)")
    for field, default in (("login", "preferred_username"), ("name", "name"), ("email", "email"),
                           ("department", "department"), ("title", "title")):
        serve.add_argument(f"--oidc-claim-{field}", default=None, metavar="CLAIM",
                           help=f"the ID-token or userinfo claim giving the {field} (default {default})")
    serve.add_argument("--oidc-link-existing", action="store_true", default=None,
                       help="let a first SSO sign-in take over an existing account of the same login that SSO "
                            "did not make (never one with a password, nor an owner or admin)")


def _oidc_values(args: argparse.Namespace) -> dict[str, Any]:
    names = ("issuer", "client_id", "client_secret", "scopes", "claim_login", "claim_name", "claim_email",
             "claim_department", "claim_title", "link_existing")
    return {f"oidc_{name}": getattr(args, f"oidc_{name}") for name in names}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="convene", description="Self-hosted meetings")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server (SFU, signaling, captions, chat) in one process")
    serve.add_argument("--host", default=None, help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8080)")
    serve.add_argument("--public-url", default=None, help="URL people open, when behind a proxy")
    serve.add_argument("--redis", default=None, help="redis://… for several processes (default: embedded)")
    serve.add_argument("--workers", type=int, default=1,
                       help="media worker processes (e.g. one per core); rooms span workers when they grow")
    serve.add_argument("--per-worker", type=int, default=None,
                       help="participants of one room a worker takes before the room spans to another")
    serve.add_argument("--asr-model", default=None,
                       help="base (default: multilingual Whisper base), tiny.en (English only, half the CPU), or a model path")
    serve.add_argument("--asr-language", default=None, help="spoken language, e.g. en (default en)")
    serve.add_argument("--asr-threads", type=int, default=None, help="CPU threads per caption inference")
    serve.add_argument("--asr-beam", type=int, default=None, help="beam size (default 1, greedy)")
    serve.add_argument("--no-captions", action="store_true", help="new rooms start with captions off")
    serve.add_argument("--allowed-origins", default=None,
                       help="comma-separated origins (https://host[:port]) whose pages may open our WebSockets "
                            "besides the server's own")
    serve.add_argument("--ice-allow-link-local", action="store_true",
                       help="accept clients' ICE candidates on link-local addresses (169.254/16, fe80::/10)")
    serve.add_argument("--metrics-token-file", default=None, metavar="FILE",
                       help="a file holding the bearer token that reaches /metrics and nothing else (Prometheus' "
                            "credentials_file; at least 32 characters; env CONVENE_METRICS_TOKEN_FILE)")
    serve.add_argument("--hooks-allow-private", action="store_true",
                       help="let outgoing webhooks reach private, loopback and link-local addresses "
                            "[CONVENE_HOOKS_ALLOW_PRIVATE=1]")
    serve.add_argument("--tls-cert", default=None, metavar="FILE",
                       help="serve https with this PEM certificate (chain) [CONVENE_TLS_CERT]")
    serve.add_argument("--tls-key", default=None, metavar="FILE", help="its PEM private key [CONVENE_TLS_KEY]")
    serve.add_argument("--tls", default=None, choices=["self-signed"],
                       help="self-signed: serve https with a certificate made once and kept in the data dir "
                            "(its fingerprint is printed) [CONVENE_TLS=self-signed]")
    serve.add_argument("--trusted-proxies", default=None, metavar="CIDR,…",
                       help="reverse proxies whose X-Forwarded-For/-Proto are believed (e.g. 127.0.0.1/32); "
                            "from other peers those headers are ignored [CONVENE_TRUSTED_PROXIES]")
    serve.add_argument("--attendees-see-records", action="store_true",
                       help="attendees, not only moderators, get the meeting page (transcript, notes) after a meeting")
    serve.add_argument("--notes-autopublish-minutes", type=float, default=None, metavar="N",
                       help="post a meeting's action items to its chat N minutes after it ends unless its "
                            "organizer did (default 60; 0: never)")
    serve.add_argument("--stats-rollup-minutes", type=float, default=None, metavar="N",
                       help="recompute today's and yesterday's usage analytics every N minutes (default 60; "
                            "0: only by `convene stats backfill`)")
    _add_ice(serve)
    from chat.directory_cli import add_ldap_arguments, add_ldap_parser

    add_ldap_arguments(serve)
    _add_oidc(serve)
    serve.add_argument("--worker-id", default=None, help=argparse.SUPPRESS)
    serve.add_argument("--media-only", action="store_true", help=argparse.SUPPRESS)
    serve.add_argument("-v", "--verbose", action="store_true")
    _add_common(serve)
    _add_database(serve)
    _add_secret(serve)
    serve.add_argument("--files-dir", default=None,
                       help="chat file blobs (default: <data dir>/chat/files); a shared directory for several "
                            "machines (env CONVENE_FILES_DIR)")
    serve.set_defaults(func=_cmd_serve)

    token = sub.add_parser("token", help="print a join URL with an access token")
    token.add_argument("room")
    token.add_argument("--identity", required=True)
    token.add_argument("--name", default=None)
    token.add_argument("--moderator", action="store_true")
    token.add_argument("--no-publish", action="store_true", help="join as a viewer")
    token.add_argument("--ttl", type=int, default=None, help="seconds the token is valid")
    token.add_argument("--url", default=None, help="server URL for the printed link")
    _add_common(token)
    _add_database(token)
    _add_secret(token)
    token.set_defaults(func=_cmd_token)

    keys = sub.add_parser("keys", help="manage REST API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", default="admin", choices=["admin", "member", "bot"])
    create.add_argument("--owner", help="a bot key's owner (a login): the bot stops working while the owner is "
                                        "deactivated, as a bot made with POST /v1/bots")
    create.add_argument("--org", default="default", help="the organisation the key belongs to (default: default)")
    _add_common(create)
    _add_database(create)
    _add_secret(create)
    create.set_defaults(func=_cmd_keys_create)
    listing = keys_sub.add_parser("list", help="list API keys (ids, names, roles, whether revoked; never secrets)")
    _add_common(listing)
    _add_database(listing)
    listing.set_defaults(func=_cmd_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke an API key: it stops working everywhere within a second")
    revoke.add_argument("key_id")
    _add_common(revoke)
    _add_database(revoke)
    revoke.set_defaults(func=_cmd_keys_revoke)

    db = sub.add_parser("db", help="the durable store: migrations")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    for name, text in (("upgrade", "apply the migrations the database lacks (the server also does on start)"),
                       ("current", "print the database's migration revision")):
        cmd = db_sub.add_parser(name, help=text)
        _add_common(cmd)
        _add_database(cmd)
        cmd.set_defaults(func=_cmd_db)

    audit = sub.add_parser("audit", help="the audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="check the audit log's hash chain: exit 0 intact, 1 names the "
                                                 "first edited, deleted or reordered row")
    _add_common(verify)
    _add_database(verify)
    verify.set_defaults(func=_cmd_audit_verify)

    files_help = "where file blobs are kept (default: <data dir>/chat/files; env CONVENE_FILES_DIR)"
    export = sub.add_parser("export", help="write every user, channel, message, task and file as JSONL (docs/export.md)")
    export.add_argument("--out", required=True, help="the JSONL file; file contents go to OUT.files/")
    import_ = sub.add_parser("import", help="read an export (or with --slack a Slack export zip); a second run "
                                            "creates nothing")
    import_.add_argument("file", help="a `convene export` JSONL file, or with --slack Slack's export zip")
    import_.add_argument("--slack", action="store_true", help="FILE is a Slack workspace export (.zip)")
    for cmd, func in ((export, _cmd_export), (import_, _cmd_import)):
        _add_common(cmd)
        _add_database(cmd)
        cmd.add_argument("--files-dir", default=None, help=files_help)
        cmd.set_defaults(func=func)

    from chat.cli import add_users_parser

    add_users_parser(sub, _add_common)
    from chat.permissions_cli import add_permissions_parser

    add_permissions_parser(sub, _add_common)
    add_ldap_parser(sub, _add_common)
    from chat.retention_cli import add_retention_parser

    add_retention_parser(sub, _add_common)

    from signaling.stats_cli import add_stats_parser

    add_stats_parser(sub, _add_common, _add_database, _with_database)
    from signaling.orgs_cli import add_orgs_parser

    add_orgs_parser(sub, _add_common, _add_database)

    from loadtest.cli import add_arguments as add_loadtest_arguments
    from loadtest.cli import run_from_args as run_loadtest

    loadtest = sub.add_parser("loadtest", help="load-test a server with WebRTC bots (reports, --ramp, --workers)")
    add_loadtest_arguments(loadtest)
    loadtest.set_defaults(func=run_loadtest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args: Any = parser.parse_args(argv)
    if args.command in ("serve", "loadtest"):
        return int(args.func(args))
    from audit import acting, operator_origin

    with acting(operator_origin()):  # what the operator changes here (keys, users) is theirs in the audit log
        return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
