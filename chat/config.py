"""Chat settings: derived from the server's frozen Config plus CONVENE_CHAT_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from common.config import Config


@dataclass(frozen=True)
class ChatConfig:
    data_dir: Path
    redis_url: str | None = None
    # The durable store (common.config.Config.database_url): None is SQLite in the data dir.
    database_url: str | None = None
    # Where file blobs are kept (common.config.Config.files_dir): None is <data_dir>/chat/files.
    shared_files_dir: Path | None = None
    redis_prefix: str = "convene:chat:"  # the event bus's channel names (chat.bus.RedisBus)
    # Per caller (API key or user) on writes: a token bucket.
    rate_per_second: float = 20.0
    rate_burst: int = 60
    # WebSocket replay: events kept per connection, and how long a dropped connection may resume.
    replay_events: int = 256
    resume_seconds: float = 120.0
    max_ws_message_bytes: int = 16 * 1024
    # Longest text accepted in a message (characters).
    max_content_chars: int = 20_000
    reminder_interval_seconds: float = 30.0
    retention_interval_seconds: float = 86400.0  # the retention job: daily (chat/retention.py)
    # Uploads never attached to a message are deleted this long after upload, checked this often.
    unattached_file_seconds: float = 6 * 3600.0
    file_sweep_interval_seconds: float = 600.0
    # What one guest (anyone with a meeting link) may upload in 24 h; members are not limited.
    guest_upload_bytes_per_day: int = 50 * 1024 * 1024

    @property
    def legacy_db_path(self) -> Path:
        """The chat.db of releases before the SQL store (what an importer reads)."""
        return self.data_dir / "chat" / "chat.db"

    @property
    def files_dir(self) -> Path:
        return self.shared_files_dir if self.shared_files_dir is not None else self.data_dir / "chat" / "files"

    @classmethod
    def from_config(cls, config: Config) -> ChatConfig:
        env = os.environ
        values: dict[str, float | int] = {}
        if "CONVENE_CHAT_RATE" in env:
            values["rate_per_second"] = float(env["CONVENE_CHAT_RATE"])
        if "CONVENE_CHAT_BURST" in env:
            values["rate_burst"] = int(env["CONVENE_CHAT_BURST"])
        if "CONVENE_CHAT_REMINDER_INTERVAL" in env:
            values["reminder_interval_seconds"] = float(env["CONVENE_CHAT_REMINDER_INTERVAL"])
        if "CONVENE_CHAT_UNATTACHED_FILE_SECONDS" in env:
            values["unattached_file_seconds"] = float(env["CONVENE_CHAT_UNATTACHED_FILE_SECONDS"])
        if "CONVENE_CHAT_GUEST_UPLOAD_BYTES" in env:
            values["guest_upload_bytes_per_day"] = int(env["CONVENE_CHAT_GUEST_UPLOAD_BYTES"])
        return cls(data_dir=config.data_dir, redis_url=config.redis_url, database_url=config.database_url,
                   shared_files_dir=config.files_dir, redis_prefix=env.get("CONVENE_CHAT_REDIS_PREFIX", "convene:chat:"), **values)  # type: ignore[arg-type]
