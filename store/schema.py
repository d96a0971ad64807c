"""Every durable table, in one MetaData, grouped per concern (add a concern as a new group here plus an
Alembic revision in migrations/versions; tests/store checks the two agree).

Chat keeps the ids, `ord`s and `seq`s of the old chat.db, so an importer can copy its rows as they are.
Nested parts of a message that are only ever read whole (edits, reactions, attachments, task notes)
stay in its JSON `body`; what is queried (author, thread, task assignee/status/due, file attachment,
search terms) has columns and indexes.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# The built-in organisation (#10): it has no row in `organisations`, and rows of other tables belong to it unless
# they say otherwise. identity.orgs, audit and stats take it from here.
DEFAULT_ORG = "default"

# Names for constraints, so migrations can refer to them on every backend.
metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

# Chat --------------------------------------------------------------------------------------------

# Named counters. "chat_seq": every chat write takes its next value (a message's ord and seq). The row
# is updated inside the writing transaction, so on PostgreSQL its lock orders the writers of all
# processes: transactions commit in counter order and a sync cursor never skips a change.
counters = Table(
    "counters", metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

chat_settings = Table(
    "chat_settings", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),  # JSON
)

chat_users = Table(
    "chat_users", metadata,
    Column("login", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("name", Text, nullable=False, default=""),
    # The user's organisation (organisations below). Logins stay unique across organisations.
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("department", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False, default=0.0),
    # The profile a directory sync keeps (chat/directory_sync.py); local users keep "" until someone sets them.
    Column("email", Text, nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    # Where the user comes from: "local" (convene users add, the REST API) or "ldap" (the directory sync).
    Column("source", String(16), nullable=False, server_default="local"),
    # The directory's stable id for the entry (entryUUID / objectGUID, else its DN); NULL for local users.
    Column("external_id", String(255), nullable=True),
    # Whether the directory lists the user as enabled (NULL: not a directory user). A sync that deactivated the
    # account sets it False, and only then may a later sync reactivate it; a deactivation by an admin stays.
    Column("directory_active", Boolean, nullable=True),
    # Last profile change by the directory sync (a sync that changes nothing leaves it alone).
    Column("updated_at", Float, nullable=False, server_default="0"),
)

chat_channels = Table(
    "chat_channels", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    # Unique; a channel of an organisation other than `default` is stored as `org~name` (identity/orgs.py),
    # so names are unique per organisation and each organisation's channel reads back as plain `name`.
    Column("name", Text, nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("created_by", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False, default=0.0),
    Column("topic", Text, nullable=False, default=""),
    Column("retention_days", Integer, nullable=True),
    # The channel's own watermark setting (off | important | all); NULL: the organisation's (docs/watermark.md).
    Column("watermark", String(16), nullable=True),
    Column("archived_at", Float, nullable=True),  # archived: read-only (NULL: open)
)
Index("ix_chat_channels_kind", chat_channels.c.kind, chat_channels.c.name)

chat_members = Table(
    "chat_members", metadata,
    Column("channel_id", String(64), ForeignKey("chat_channels.id", ondelete="CASCADE"), primary_key=True),
    Column("login", String(128), primary_key=True),
    Column("last_read", BigInteger, nullable=False, default=0),
)
Index("ix_chat_members_login", chat_members.c.login, chat_members.c.channel_id)

chat_messages = Table(
    "chat_messages", metadata,
    Column("ord", BigInteger, primary_key=True, autoincrement=False),
    Column("id", String(64), nullable=False, unique=True),
    Column("channel_id", String(64), ForeignKey("chat_channels.id"), nullable=False),
    Column("author", String(128), nullable=False),
    Column("client_id", String(128), nullable=True),
    Column("seq", BigInteger, nullable=False),
    Column("type", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("thread", String(64), nullable=True),
    Column("has_file", Boolean, nullable=False, default=False),
    Column("task_assignee", String(128), nullable=True),
    Column("task_status", String(16), nullable=True),
    Column("task_due", Float, nullable=True),
    Column("body", Text, nullable=False),  # Message.to_wire() as JSON
    # How it was posted (usage analytics): web (a session, user or meeting token) or api (an API key); NULL
    # for messages stored by the server itself or before revision 0014.
    Column("via", String(16), nullable=True),
    # A retried post (same author and client_id) is stored once, whichever process takes it.
    UniqueConstraint("author", "client_id", name="uq_chat_messages_author_client"),
)
Index("ix_chat_messages_channel", chat_messages.c.channel_id, chat_messages.c.ord)
Index("ix_chat_messages_seq", chat_messages.c.seq)
Index("ix_chat_messages_thread", chat_messages.c.thread, chat_messages.c.ord)
Index("ix_chat_messages_assignee", chat_messages.c.task_assignee, chat_messages.c.task_status)
Index("ix_chat_messages_due", chat_messages.c.task_due)
Index("ix_chat_messages_created", chat_messages.c.created_at)  # a day's messages (usage rollups)

# The search index: one row per distinct term of a live message. Terms are folded words (a query word
# matches them by prefix: a range scan), English stems that are not a prefix of their word, and CJK
# character bigrams plus each CJK run's last character (chat/textindex.py).
chat_search_terms = Table(
    "chat_search_terms", metadata,
    # Compared byte by byte (PostgreSQL's "C" collation; SQLite's default): prefix ranges hold for any script.
    Column("term", String(64).with_variant(String(64, collation="C"), "postgresql"), primary_key=True),
    Column("ord", BigInteger, primary_key=True, autoincrement=False),
    Column("channel_id", String(64), nullable=False),
)
# A message's terms by one probe: search walks messages newest first and checks each against the query.
Index("ix_chat_search_terms_ord", chat_search_terms.c.ord, chat_search_terms.c.term)

chat_files = Table(
    "chat_files", metadata,
    Column("id", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("name", Text, nullable=False),
    Column("mime", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("uploader", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attached_at", Float, nullable=True),  # first posted; NULL: an upload never posted
)
Index("ix_chat_files_sha256", chat_files.c.sha256)
Index("ix_chat_files_uploader", chat_files.c.uploader, chat_files.c.created_at)
Index("ix_chat_files_unattached", chat_files.c.attached_at, chat_files.c.created_at)

# Which live message in which channel carries a file: the file's readers are those channels' members.
chat_file_refs = Table(
    "chat_file_refs", metadata,
    Column("file_id", String(64), ForeignKey("chat_files.id", ondelete="CASCADE"), primary_key=True),
    Column("message_id", String(64), primary_key=True),
    Column("channel_id", String(64), nullable=False),
)
Index("ix_chat_file_refs_channel", chat_file_refs.c.file_id, chat_file_refs.c.channel_id)
Index("ix_chat_file_refs_message", chat_file_refs.c.message_id)  # retention deletes a message's references

CHAT_TABLES = (counters, chat_settings, chat_users, chat_channels, chat_members, chat_messages,
               chat_search_terms, chat_files, chat_file_refs)

# Identity ----------------------------------------------------------------------------------------

# REST API keys `cvk_<key_id>_<secret>`: only the secret's SHA-256 is kept. A revoked key keeps its row
# (who had it, when it stopped) and no longer authenticates.
api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("name", Text, nullable=False),
    Column("role", String(16), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

# The meeting ledger: every meeting a room has held. At most one live (not ended) meeting per room, kept
# by a partial unique index, so processes that start a room's meeting at once agree on one.
meetings = Table(
    "meetings", metadata,
    Column("meeting_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("room", String(128), nullable=False),
    Column("started_at", Float, nullable=False),
    Column("guests", Boolean, nullable=False),
    Column("ended_at", Float, nullable=True),
    Column("end_reason", Text, nullable=False, default=""),
    # Who started it (a signed-in person's login; NULL for guests and API keys) and, for a scheduled meeting,
    # its organiser: both are its moderators again when they rejoin signed in.
    Column("started_by", String(128), nullable=True),
    Column("organizer", String(128), nullable=True),
)
Index("ix_meetings_room", meetings.c.room, meetings.c.started_at)
Index("ix_meetings_started", meetings.c.started_at)
Index("uq_meetings_live_room", meetings.c.room, unique=True,
      sqlite_where=meetings.c.ended_at.is_(None), postgresql_where=meetings.c.ended_at.is_(None))

# Who a moderator removed from a meeting: that identity's tokens issued up to `removed_at` no longer join.
meeting_removals = Table(
    "meeting_removals", metadata,
    Column("meeting_id", String(64), ForeignKey("meetings.meeting_id", ondelete="CASCADE"), primary_key=True),
    Column("identity", String(128), primary_key=True),
    Column("removed_at", Float, nullable=False),
)

# Media workers ------------------------------------------------------------------------------------

# Which worker process is alive (seen within a few seconds), where its pipe listens, and its load.
sfu_workers = Table(
    "sfu_workers", metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("http_url", Text, nullable=False),
    Column("pipe_host", Text, nullable=False),
    Column("pipe_port", Integer, nullable=False),
    Column("participants", Integer, nullable=False),
    Column("seen", Float, nullable=False),
)

# Which worker hosts which room (a room may span several workers, joined by pipes).
sfu_room_hosts = Table(
    "sfu_room_hosts", metadata,
    Column("room", String(128), primary_key=True),
    Column("worker_id", String(64), primary_key=True),
)
Index("ix_sfu_room_hosts_worker", sfu_room_hosts.c.worker_id)

# Transcripts and notes ---------------------------------------------------------------------------

# One meeting's transcript: its attendance and final captions as the Transcript's JSON (always read whole);
# the formats people download (VTT, SRT, text, Markdown) and the notes are rendered from it on request. Keyed
# by room and meeting: meetings of releases before the ledger were named by their start time, per room.
transcripts = Table(
    "transcripts", metadata,
    Column("room", String(128), primary_key=True),
    Column("meeting_id", String(64), primary_key=True),
    Column("started_at", Float, nullable=False),
    Column("saved_at", Float, nullable=False),
    Column("body", Text, nullable=False),
)
Index("ix_transcripts_room", transcripts.c.room, transcripts.c.started_at)

# The notes' state: the organizer's edit laid over the generated notes, and whether (when, by whom) the
# action items were posted to chat (JSON).
meeting_notes = Table(
    "meeting_notes", metadata,
    Column("room", String(128), primary_key=True),
    Column("meeting_id", String(64), primary_key=True),
    Column("updated_at", Float, nullable=False),
    Column("body", Text, nullable=False),
)

CORE_TABLES = (api_keys, meetings, meeting_removals, sfu_workers, sfu_room_hosts, transcripts, meeting_notes)


# Accounts ----------------------------------------------------------------------------------------

# Sign-in credentials, one row per login (identity/passwords.py). password_hash is an argon2id string (NULL:
# no local password). token_epoch is bumped to revoke every session and user token of the login at once;
# active False refuses sign-in.
accounts = Table(
    "accounts", metadata,
    Column("login", String(128), primary_key=True),
    Column("password_hash", Text, nullable=True),
    Column("token_epoch", Integer, nullable=False, default=0),
    Column("active", Boolean, nullable=False, default=True),
    Column("updated_at", Float, nullable=False, default=0.0),
)

# Sessions ended by sign-out before they expire (identity/passwords.py): a session token's `sid` listed here
# authenticates nowhere. Rows past expires_at are pruned (the token has expired by then anyway).
ended_sessions = Table(
    "ended_sessions", metadata,
    Column("sid", String(64), primary_key=True),
    Column("expires_at", Float, nullable=False),
)

# Audit -------------------------------------------------------------------------------------------

# The audit log (audit/): append-only, one row per event. `event` is the event as canonical JSON (sorted keys,
# no spaces, UTF-8) and carries its own seq; hash = SHA-256(prev_hash ‖ event) in hex, the first row's
# prev_hash being 64 zeros, so an edited, deleted or reordered row breaks the chain (`convene audit verify`).
# Appends take the "audit_seq" counter row in the same transaction, which orders writers of every process.
# at / event_type / actor repeat fields of `event` for the reader's filters (verify checks they agree).
audit_log = Table(
    "audit_log", metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("at", Float, nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("event", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_at", audit_log.c.at)
Index("ix_audit_log_event_type", audit_log.c.event_type, audit_log.c.seq)
Index("ix_audit_log_actor", audit_log.c.actor, audit_log.c.seq)

# Bots, slash commands, interactive messages (integrations/) ----------------------------------------

# A bot is a chat user (role bot) made by someone (its owner) with POST /v1/bots; while the owner's account is
# inactive the bot's API keys authenticate nowhere. signing_secret signs what the server sends the bot's
# integration URL (button clicks on its messages).
bots = Table(
    "bots", metadata,
    Column("login", String(128), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("owner", String(128), nullable=False),
    Column("signing_secret", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)
Index("ix_bots_owner", bots.c.owner)

# Slash commands: `/trigger args` in chat POSTs to url, signed with secret (integrations/signing.py).
slash_commands = Table(
    "slash_commands", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("trigger", String(32), nullable=False),
    Column("url", Text, nullable=False),
    Column("secret", String(128), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    UniqueConstraint("org_id", "trigger", name="uq_slash_commands_trigger"),
)

# One invocation of a slash command: its response_url is /v1/commands/responses/{id}/{secret}; only the
# secret's SHA-256 is kept. `uses` counts accepted responses (at most 5, before expires_at).
command_invocations = Table(
    "command_invocations", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("command_id", String(32), nullable=False),
    Column("secret_hash", String(64), nullable=False),
    Column("user_login", String(128), nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("uses", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)
Index("ix_command_invocations_expires", command_invocations.c.expires_at)

# The server-side half of a message with buttons: where clicks go (url), what the poster wants back (context,
# JSON), each button's value (actions, JSON). None of it is ever sent to clients.
message_actions = Table(
    "message_actions", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("bot", String(128), nullable=False),
    Column("url", Text, nullable=False),
    Column("context", Text, nullable=False),
    Column("actions", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Webhooks (integrations/) ------------------------------------------------------------------------

# Incoming webhooks, Git receivers (GitHub, GitLab) and outgoing webhooks, one row each. Each posts as its own bot
# user (bot_login, role bot). An incoming hook's URL secret is kept only as its SHA-256 (secret_hash); the shared
# secret of a Git receiver or an outgoing hook is never stored: it is HMAC(server secret, id + salt), so a copy of
# the database alone signs nothing. channel_id NULL: an outgoing hook listening on every team channel (its
# trigger_words, a JSON list, then say which messages).
hooks = Table(
    "hooks", metadata,
    Column("id", String(32), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("kind", String(16), nullable=False),
    Column("name", Text, nullable=False),
    Column("channel_id", String(64), nullable=True),
    Column("owner", String(128), nullable=False),
    Column("bot_login", String(128), nullable=False),
    Column("secret_hash", String(64), nullable=True),
    Column("salt", String(64), nullable=True),
    Column("url", Text, nullable=True),
    Column("trigger_words", Text, nullable=False, default="[]"),
    Column("created_at", Float, nullable=False),
)
Index("ix_hooks_kind", hooks.c.kind, hooks.c.channel_id)

# What a hook received or sent: a Git delivery id (X-GitHub-Delivery, X-Gitlab-Event-UUID) taken once, so a
# redelivery posts nothing; an outgoing hook's post id, taken by the one process that sends it, with how that went
# (status sending|ok|failed, attempts, the last error), which GET /v1/hooks/{id} shows its owner.
hook_deliveries = Table(
    "hook_deliveries", metadata,
    Column("hook_id", String(32), ForeignKey("hooks.id", ondelete="CASCADE"), primary_key=True),
    Column("delivery_id", String(128), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
Index("ix_hook_deliveries_recent", hook_deliveries.c.hook_id, hook_deliveries.c.updated_at)
Index("ix_hook_deliveries_created", hook_deliveries.c.created_at)

# Scheduled posts ---------------------------------------------------------------------------------

# Posts a user scheduled (integrations/scheduled_store.py): one-shot (rule_kind NULL, start = the instant) or
# recurring (rule_kind rrule|cron, rule, IANA timezone, start = DTSTART). status scheduled|done|cancelled;
# next_run is the due instant while scheduled. A scheduler claims a due row by moving next_run on with
# UPDATE … WHERE id AND next_run AND status (one process wins), then records the outcome in last_* and
# a scheduled_post_runs row (its key (post_id, due_at) refuses a second run of the same occurrence).
scheduled_posts = Table(
    "scheduled_posts", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("author", String(128), nullable=False),
    Column("channel_id", String(64), nullable=False),
    Column("text", Text, nullable=False),
    Column("rule_kind", String(8), nullable=True),
    Column("rule", Text, nullable=True),
    Column("timezone", String(64), nullable=True),
    Column("start", Float, nullable=False),
    Column("status", String(16), nullable=False),
    Column("next_run", Float, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("runs", Integer, nullable=False, server_default="0"),
    Column("last_run_at", Float, nullable=True),
    Column("last_outcome", String(16), nullable=True),
    Column("last_error_code", String(64), nullable=True),
    Column("last_message_id", String(64), nullable=True),
)
Index("ix_scheduled_posts_status", scheduled_posts.c.status, scheduled_posts.c.next_run)
Index("ix_scheduled_posts_author", scheduled_posts.c.author, scheduled_posts.c.created_at)

scheduled_post_runs = Table(
    "scheduled_post_runs", metadata,
    Column("post_id", String(64), primary_key=True),
    Column("due_at", Float, primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("ran_at", Float, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("message_id", String(64), nullable=True),
)

# OpenID Connect ----------------------------------------------------------------------------------

# Which subject of which provider signs in as which login (identity/oidc_links.py). The first sign-in binds
# them; afterwards another subject asserting the same login (a user name the provider gave to someone new) is
# refused, and so is the same subject asserting another login.
oidc_identities = Table(
    "oidc_identities", metadata,
    Column("issuer", String(512), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("login", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("last_sign_in", Float, nullable=False),
    # Per organisation (0017): two organisations may use the same provider, each binding its own subjects.
    PrimaryKeyConstraint("org_id", "issuer", "subject", name="pk_oidc_identities"),
    UniqueConstraint("org_id", "issuer", "login", name="uq_oidc_identities_login"),
)

# Permissions (#10): an organisation's override of one row of the permission table (identity/permissions.py):
# the roles that hold it there, as a JSON list. A row absent here holds its documented default.
org_permissions = Table(
    "org_permissions", metadata,
    Column("org_id", String(64), primary_key=True, server_default=DEFAULT_ORG),
    Column("permission", String(64), primary_key=True),
    Column("roles", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
)

# Usage analytics (stats/) -------------------------------------------------------------------------

# Daily rollups: one row per (org, UTC day "YYYY-MM-DD", metric, dimension; "" when the metric has none).
# A day is recomputed by deleting its rows and inserting the new ones in one transaction.
usage_daily = Table(
    "usage_daily", metadata,
    Column("org_id", String(64), primary_key=True, server_default=DEFAULT_ORG),
    Column("day", String(10), primary_key=True),
    Column("metric", String(64), primary_key=True),
    Column("dimension", String(64), primary_key=True),
    Column("value", Float, nullable=False),
    Column("computed_at", Float, nullable=False),
)

# Who used chat or meetings on a UTC day (one row per login and day, written at most once per process per day).
user_activity = Table(
    "user_activity", metadata,
    Column("org_id", String(64), primary_key=True, server_default=DEFAULT_ORG),
    Column("day", String(10), primary_key=True),
    Column("login", String(128), primary_key=True),
)

# Who joined which meeting (its ledger id), first join only: the rollups' participants per meeting.
meeting_participants = Table(
    "meeting_participants", metadata,
    Column("meeting_id", String(64), primary_key=True),
    Column("identity", String(128), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("joined_at", Float, nullable=False),
)

# Retention and legal hold (#11, docs/retention.md): a hold keeps the messages of its users (as authors) and
# channels, and their files, through retention and recall until it is lifted (lifted_at set; the row stays).
# users and channels are JSON lists.
legal_holds = Table(
    "legal_holds", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("name", Text, nullable=False),
    Column("users", Text, nullable=False),
    Column("channels", Text, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("lifted_at", Float, nullable=True),
    Column("lifted_by", String(128), nullable=True),
)
Index("ix_legal_holds_org_id", legal_holds.c.org_id, legal_holds.c.lifted_at)

# What a recall took from a held message (Message.to_wire() as JSON): users no longer see it, admins' legal
# export still reads it. Retention deletes a copy once no hold keeps it and it is older than the policy.
held_copies = Table(
    "held_copies", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("channel_id", String(64), nullable=False),
    Column("author", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("recalled_at", Float, nullable=False),
    Column("recalled_by", String(128), nullable=False),
    Column("body", Text, nullable=False),
)
Index("ix_held_copies_channel_id", held_copies.c.channel_id, held_copies.c.created_at)

# The files of a held copy: kept (and readable by admins) while the copy is.
held_files = Table(
    "held_files", metadata,
    Column("message_id", String(64), primary_key=True),
    Column("file_id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
)
Index("ix_held_files_file_id", held_files.c.file_id)


# Organisations (tenants, #10) ----------------------------------------------------------------------

# Every organisation but the built-in `default` (which has no row and serves every Host not listed below).
# Rows of other tables carry their organisation in org_id; messages, members and transcripts belong to the
# organisation of their channel or meeting (whose room is stored as `org~room`, see identity/orgs.py).
organisations = Table(
    "organisations", metadata,
    Column("org_id", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)

# Which Host name (lower case, without port) serves which organisation.
organisation_hosts = Table(
    "organisation_hosts", metadata,
    Column("host", String(255), primary_key=True),
    Column("org_id", String(64), ForeignKey("organisations.org_id", ondelete="CASCADE"), nullable=False),
)


# An organisation's own directory connection (#10, identity/org_directories.py): kind `ldap` (its LDAP/AD
# directory) or `oidc` (its single sign-on provider). `settings` is JSON (never a secret); the bind password or
# client secret is in `sealed_secret`, AES-GCM under a key derived from the token secret (identity/sealed.py).
# The default organisation's connections are the server's flags, never a row here.
org_directories = Table(
    "org_directories", metadata,
    Column("org_id", String(64), primary_key=True, server_default=DEFAULT_ORG),
    Column("kind", String(16), primary_key=True),
    Column("settings", Text, nullable=False),
    Column("sealed_secret", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    Column("updated_by", String(128), nullable=False),
)


# Access that ends when it should (#10): state every process of one deployment shares --------------------------

# Failed sign-ins per key ("login:alice", "addr:10.0.0.1") in a fixed window from the first failure
# (identity/attempts.py): 5 lock the key out for the rest of the window, in every process sharing the store.
signin_failures = Table(
    "signin_failures", metadata,
    Column("key", String(200), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
)
Index("ix_signin_failures_window_start", signin_failures.c.window_start)

# The directory sync's last run per organisation (chat/directory_status.py), so every process answers
# GET /v1/admin/ldap/status alike: `last_run` is the run's report as JSON, `running_since` set while one runs.
directory_status = Table(
    "directory_status", metadata,
    Column("org_id", String(64), primary_key=True, server_default=DEFAULT_ORG),
    Column("running_since", Float, nullable=True),
    Column("last_run", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
    # Who holds the run (`running_since`): a lease, so one process syncs an organisation at a time (0020).
    Column("holder", String(200), nullable=True),
)


# Scheduled meetings (#10, docs/meetings.md) ------------------------------------------------------------

# A meeting planned ahead: a room (stored as `org~room` outside `default`), a title, a start and a length, its
# organiser. The meeting itself starts in the ledger (`meetings`) when the first person joins the room.
# `sequence` counts the changes people's calendars have seen (iCalendar SEQUENCE).
scheduled_meetings = Table(
    "scheduled_meetings", metadata,
    Column("id", String(64), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
    Column("room", String(128), nullable=False),
    Column("title", Text, nullable=False),
    Column("organizer", String(128), nullable=False),
    Column("starts_at", Float, nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("timezone", String(64), nullable=False, server_default=""),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("sequence", Integer, nullable=False, server_default="0"),
)
Index("ix_scheduled_meetings_org_id", scheduled_meetings.c.org_id, scheduled_meetings.c.starts_at)
Index("ix_scheduled_meetings_room", scheduled_meetings.c.room, scheduled_meetings.c.starts_at)
Index("ix_scheduled_meetings_organizer", scheduled_meetings.c.organizer, scheduled_meetings.c.starts_at)

# Who is invited (logins of the organiser's organisation).
scheduled_meeting_invitees = Table(
    "scheduled_meeting_invitees", metadata,
    Column("scheduled_id", String(64), ForeignKey("scheduled_meetings.id", ondelete="CASCADE"), primary_key=True),
    Column("login", String(128), primary_key=True),
    Column("org_id", String(64), nullable=False, server_default=DEFAULT_ORG),
)
Index("ix_scheduled_meeting_invitees_login", scheduled_meeting_invitees.c.login)
