"""The server's configuration: one frozen value built from the command line and the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def default_data_dir() -> Path:
    env = os.environ.get("CONVENE_DATA_DIR")
    if env:
        return Path(env)
    return Path.home() / ".convene"


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = field(default_factory=default_data_dir)
    # The URL people open; derived from host/port when not set (behind a proxy, set it).
    public_url: str | None = None
    # Redis for deployments with several server processes; None means the embedded store.
    redis_url: str | None = None
    # ICE: STUN/TURN servers handed to aiortc. Empty keeps all traffic on the host's own addresses.
    ice_servers: tuple[str, ...] = ()
    # Signaling limits.
    max_ws_message_bytes: int = 64 * 1024
    heartbeat_seconds: float = 10.0
    # A participant whose socket is gone is removed after this long.
    dead_socket_seconds: float = 30.0
    default_token_ttl_seconds: int = 6 * 3600
    # Anyone who can reach the server may open a meeting from `/` (like Jitsi's default). Set False
    # (--no-guest-rooms / CONVENE_GUEST_ROOMS=0) to admit only holders of a token minted with an API key.
    guest_rooms: bool = True
    # Several workers: this process's id (None: one process, no pipes) and how many participants a
    # worker takes in one room before the room spans to another worker.
    worker_id: str | None = None
    workers: int = 1
    per_worker: int = 50
    media_only: bool = False  # a spawned worker: media and signaling, no chat (the first worker has it)
    # `convene serve` runs CPython's full garbage collections on a schedule of its own (common/gc_schedule.py);
    # CONVENE_FULL_GC=python leaves them to CPython's rule, to compare the two.
    scheduled_full_gc: bool = True
    # A room nobody is in is ended (transcript finalized) after this long.
    empty_room_seconds: float = 300.0
    # Keyframe requests upstream are throttled per publisher track.
    pli_throttle_seconds: float = 0.5
    # Captions (transcribe/).
    captions_default: bool = True
    asr_model: str | None = None  # None: multilingual Whisper base (transcribe/models.py); "tiny.en" for small machines
    asr_language: str | None = "en"
    asr_threads: int = 1
    asr_beam: int = 1
    asr_workers: int = max(1, (os.cpu_count() or 2))
    # Browser pages on these origins (scheme://host[:port]) may open our WebSockets besides the server's
    # own; any other Origin is refused (a WebSocket is not bound by the same-origin policy).
    allowed_origins: tuple[str, ...] = ()
    # A chat WebSocket must authenticate in its first frame within this long (tokens stay out of URLs).
    ws_auth_timeout_seconds: float = 10.0
    # What anonymous callers can cost: guest joins per client address per minute, rooms held at once, and how
    # long a signaling socket may stay open without joining.
    guest_joins_per_minute: int = 10
    max_rooms: int = 1000
    join_timeout_seconds: float = 10.0
    # Remote ICE candidates on link-local addresses (169.254/16: cloud metadata, fe80::/10) are refused
    # unless set (--ice-allow-link-local): a client must not make the server probe them.
    ice_allow_link_local: bool = False
    # HTTPS (signaling/tls.py): browsers give camera and microphone only to secure pages, so a server reached
    # at anything but localhost needs it. A certificate and key in PEM files, or one made once and kept in the
    # data dir (`--tls self-signed`, which fills in these paths at start).
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_self_signed: bool = False
    # Reverse proxies (CIDRs) whose X-Forwarded-For/-Proto are believed (signaling/proxies.py); from any other
    # peer those headers are ignored, or anyone could pick the address the guest rate limit counts.
    trusted_proxies: tuple[str, ...] = ()
    # The durable store (store/): None is the embedded SQLite file <data_dir>/convene.db; a
    # postgresql://user@host/db URL (--database-url, CONVENE_DATABASE_URL) shares one database between
    # several server processes and machines.
    database_url: str | None = None

    # ICE on real networks (docs/deploy.md "NAT" and "TURN"). Host candidates name `announce_ip` instead of the
    # address their socket is bound to (a server behind 1:1 NAT); only addresses inside `rtc_ips` (CIDRs) gather
    # (empty: every one; 127.0.0.1 only when serving on loopback); ICE binds UDP ports in `rtc_port_range`
    # (inclusive; None: any free port).
    announce_ip: str | None = None
    rtc_ips: tuple[str, ...] = ()
    rtc_port_range: tuple[int, int] | None = None
    # TURN URLs handed to each client at join with time-limited credentials made from `turn_secret` (coturn's
    # use-auth-secret, signaling/turn.py), valid this long; a STUN URL handed to clients and used by the server.
    turn_urls: tuple[str, ...] = ()
    turn_secret: str | None = field(default=None, repr=False)
    turn_credential_ttl_seconds: int = 12 * 3600
    stun_url: str | None = None
    # Meeting records (the meeting page /m/{id}): attendees, not only moderators, get a record token when a
    # meeting ends (--attendees-see-records); the notes' action items are posted to the meeting's chat by its
    # organizer, or by themselves this long after the end if nobody did (0: never; --notes-autopublish-minutes).
    attendees_see_records: bool = False
    notes_autopublish_seconds: float = 3600.0
    # The token secret (signs access tokens, file links, pipe handshakes): None keeps it in <data_dir>/token_secret,
    # made once (0600). Servers that share one PostgreSQL on several machines point this at one shared file
    # (--token-secret-file, CONVENE_TOKEN_SECRET_FILE; 64 hex digits), so a token minted by one is good on all.
    token_secret_file: Path | None = None
    # Chat file blobs (content-addressed): None is <data_dir>/chat/files; a shared directory (NFS, a volume) for
    # several machines (--files-dir, CONVENE_FILES_DIR). The files' records are in the store.
    files_dir: Path | None = None
    # The company directory (LDAP / Active Directory; identity/directory.py). None: no directory. ldap:// is
    # upgraded with StartTLS, ldaps:// is TLS from the start; the server's certificate is checked against
    # ldap_ca_file (PEM) or the system's CAs. The bind password comes from CONVENE_LDAP_BIND_PASSWORD or
    # --ldap-bind-password and is never shown (repr) or logged. Attribute settings name fallbacks with
    # commas: the first attribute an entry has wins ("displayName,cn").
    ldap_url: str | None = None
    ldap_bind_dn: str | None = None
    ldap_bind_password: str | None = field(default=None, repr=False)
    ldap_base_dn: str = ""
    ldap_user_filter: str = "(objectClass=inetOrgPerson)"
    ldap_attr_login: str = "uid"
    ldap_attr_name: str = "displayName,cn"
    ldap_attr_email: str = "mail"
    ldap_attr_department: str = "departmentNumber,ou"
    ldap_attr_title: str = "title"
    ldap_ca_file: Path | None = None
    # A TOML file mapping directory groups to roles and channels (chat/group_map.py); None: groups ignored.
    ldap_group_map: Path | None = None
    # How often the server syncs users from the directory (0: only on POST /v1/admin/ldap/sync, convene ldap sync).
    ldap_sync_interval_seconds: float = 3600.0
    # How often the usage rollups of today and yesterday are recomputed (stats/job.py; 0: only by
    # `convene stats backfill`).
    stats_rollup_seconds: float = 3600.0
    # Outgoing webhooks reach public addresses only: a hook must not make the server POST into its own network
    # (metadata services, loopback admin ports). --hooks-allow-private (CONVENE_HOOKS_ALLOW_PRIVATE=1) lifts that
    # for receivers on the company network.
    hooks_allow_private: bool = False
    # A file holding the bearer token Prometheus sends to /metrics (its `authorization: credentials_file`): it
    # reaches /metrics and nothing else, so a scraper holds no admin key. None: only a default-organisation admin
    # key scrapes.
    metrics_token_file: Path | None = None
    # OpenID Connect single sign-on (identity/oidc.py): on when issuer and client id are set. The client secret
    # comes from CONVENE_OIDC_CLIENT_SECRET or --oidc-client-secret and is never shown (repr) or logged. The
    # claim settings name which ID-token / userinfo claims give the login and the profile, like the LDAP
    # attributes; the provider's redirect URI to register is {public url}/v1/auth/oidc/callback.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = field(default=None, repr=False)
    oidc_scopes: tuple[str, ...] = ("openid", "profile", "email")
    oidc_claim_login: str = "preferred_username"
    oidc_claim_name: str = "name"
    oidc_claim_email: str = "email"
    oidc_claim_department: str = "department"
    oidc_claim_title: str = "title"
    # A first SSO sign-in whose login is already an account SSO did not make is refused (oidc_account_exists):
    # the provider's user names are not ours to trust. --oidc-link-existing lets it take over such an account
    # when that has no password and is not owner or admin (e.g. people the directory sync or an import made).
    oidc_link_existing: bool = False

    @property
    def url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.host
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def scheme(self) -> str:
        """How this process serves: https once it has (or will make) a certificate."""
        return "https" if self.tls_cert is not None or self.tls_self_signed else "http"

    @property
    def ice_server_urls(self) -> list[str]:
        return list(self.ice_servers)


def config_from_env(**overrides: object) -> Config:
    """Builds a Config from CONVENE_* environment variables, then explicit overrides (CLI flags)."""
    env = os.environ
    values: dict[str, object] = {}
    if "CONVENE_HOST" in env:
        values["host"] = env["CONVENE_HOST"]
    if "CONVENE_PORT" in env:
        values["port"] = int(env["CONVENE_PORT"])
    if "CONVENE_PUBLIC_URL" in env:
        values["public_url"] = env["CONVENE_PUBLIC_URL"]
    if "CONVENE_REDIS_URL" in env:
        values["redis_url"] = env["CONVENE_REDIS_URL"]
    if "CONVENE_ICE_SERVERS" in env:
        values["ice_servers"] = tuple(s for s in env["CONVENE_ICE_SERVERS"].split(",") if s)
    if "CONVENE_GUEST_ROOMS" in env:
        values["guest_rooms"] = env["CONVENE_GUEST_ROOMS"] not in ("0", "false", "no")
    if "CONVENE_ASR_MODEL" in env:
        values["asr_model"] = env["CONVENE_ASR_MODEL"]
    if "CONVENE_ALLOWED_ORIGINS" in env:
        values["allowed_origins"] = split_origins(env["CONVENE_ALLOWED_ORIGINS"])
    if "CONVENE_DATABASE_URL" in env:
        values["database_url"] = env["CONVENE_DATABASE_URL"] or None
    if "CONVENE_TLS_CERT" in env:
        values["tls_cert"] = env["CONVENE_TLS_CERT"]
    if "CONVENE_TLS_KEY" in env:
        values["tls_key"] = env["CONVENE_TLS_KEY"]
    if "CONVENE_TLS" in env:
        values["tls_self_signed"] = env["CONVENE_TLS"] == "self-signed"
    if "CONVENE_TRUSTED_PROXIES" in env:
        values["trusted_proxies"] = split_list(env["CONVENE_TRUSTED_PROXIES"])
    # ICE (a TURN secret is better given here than as a flag, which `ps` shows to every local user).
    if "CONVENE_ANNOUNCE_IP" in env:
        values["announce_ip"] = env["CONVENE_ANNOUNCE_IP"]
    if "CONVENE_RTC_IPS" in env:
        values["rtc_ips"] = split_list(env["CONVENE_RTC_IPS"])
    if "CONVENE_RTC_PORT_RANGE" in env:
        values["rtc_port_range"] = parse_port_range(env["CONVENE_RTC_PORT_RANGE"])
    if "CONVENE_TURN_URLS" in env:
        values["turn_urls"] = split_list(env["CONVENE_TURN_URLS"])
    if "CONVENE_TURN_SECRET" in env:
        values["turn_secret"] = env["CONVENE_TURN_SECRET"]
    if "CONVENE_STUN_URL" in env:
        values["stun_url"] = env["CONVENE_STUN_URL"]
    if "CONVENE_TOKEN_SECRET_FILE" in env:
        values["token_secret_file"] = env["CONVENE_TOKEN_SECRET_FILE"] or None
    if "CONVENE_FILES_DIR" in env:
        values["files_dir"] = env["CONVENE_FILES_DIR"] or None
    if "CONVENE_METRICS_TOKEN_FILE" in env:
        values["metrics_token_file"] = env["CONVENE_METRICS_TOKEN_FILE"] or None
    if "CONVENE_FULL_GC" in env:
        values["scheduled_full_gc"] = env["CONVENE_FULL_GC"] != "python"
    if "CONVENE_HOOKS_ALLOW_PRIVATE" in env:
        values["hooks_allow_private"] = env["CONVENE_HOOKS_ALLOW_PRIVATE"] not in ("", "0", "false", "no")
    # LDAP: a bind password belongs here rather than in a flag, which `ps` shows to every local user.
    for name in ("url", "bind_dn", "bind_password"):
        if f"CONVENE_LDAP_{name.upper()}" in env:
            values[f"ldap_{name}"] = env[f"CONVENE_LDAP_{name.upper()}"] or None
    # OIDC: the client secret belongs here rather than in a flag, for the same reason.
    for name in ("issuer", "client_id", "client_secret"):
        if f"CONVENE_OIDC_{name.upper()}" in env:
            values[f"oidc_{name}"] = env[f"CONVENE_OIDC_{name.upper()}"] or None
    if "CONVENE_LDAP_BASE_DN" in env:
        values["ldap_base_dn"] = env["CONVENE_LDAP_BASE_DN"]
    values.update({k: v for k, v in overrides.items() if v is not None})
    for key in ("data_dir", "tls_cert", "tls_key", "token_secret_file", "files_dir", "ldap_ca_file", "ldap_group_map",
                "metrics_token_file"):
        if key in values:
            values[key] = Path(str(values[key]))
    return Config(**values)  # type: ignore[arg-type]


def split_origins(text: str) -> tuple[str, ...]:
    """`https://a.example,https://b.example:8443` -> its origins (for --allowed-origins and the env)."""
    return tuple(o.strip().rstrip("/") for o in text.split(",") if o.strip())


def split_list(text: str) -> tuple[str, ...]:
    """`10.0.0.0/8, 192.168.1.5` -> its items, blanks dropped (for --trusted-proxies and the env)."""
    return tuple(item.strip() for item in text.split(",") if item.strip())


def parse_port_range(text: str) -> tuple[int, int]:
    """`50000-60000` -> (50000, 60000); ValueError unless 1 <= first <= last <= 65535."""
    first, sep, last = text.strip().partition("-")
    if not sep or not first.strip().isdigit() or not last.strip().isdigit():
        raise ValueError(f"{text!r} is not a port range like 50000-60000")
    low, high = int(first), int(last)
    if not 1 <= low <= high <= 65535:
        raise ValueError(f"{text!r}: ports are 1-65535, the first no higher than the last")
    return low, high
