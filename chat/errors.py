"""Chat-specific errors: each a ConveneError with a stable code (mapped to JSON by common.wire)."""

from __future__ import annotations

from common.errors import BadRequest, Conflict, ConveneError, Forbidden, NotFound
from common.errors import NotPermitted as NotPermitted  # lives in common (identity raises it); importable here too


class NotMember(Forbidden):
    code = "not_a_member"


class RecallWindowClosed(Forbidden):
    code = "recall_window_closed"


class ChannelNotFound(NotFound):
    code = "channel_not_found"


class MessageNotFound(NotFound):
    code = "message_not_found"


class FileNotFound(NotFound):
    code = "file_not_found"


class UserNotFound(NotFound):
    code = "user_not_found"


class ChannelExists(Conflict):
    code = "channel_exists"


class MessageRecalled(Conflict):
    code = "message_recalled"


class ChannelArchived(Conflict):
    """The channel is archived: read-only until unarchived (POST /v1/channels/{id}/unarchive)."""

    code = "channel_archived"


class FileTooLarge(ConveneError):
    code, status = "file_too_large", 413


class FileTypeMismatch(ConveneError):
    code, status = "file_type_mismatch", 415


class FileTypeRefused(ConveneError):
    code, status = "file_type_refused", 400


class BadMultipart(BadRequest):
    code = "bad_multipart"


class QuotaExceeded(ConveneError):
    """A guest's uploads of the last day reached their quota (ChatConfig.guest_upload_bytes_per_day)."""

    code, status = "quota_exceeded", 413


class ImportUnreadable(BadRequest):
    """An import file (convene JSONL or a Slack export) that cannot be read: nothing after the bad part is
    imported; what came before stays (a second run after fixing it creates only the rest)."""

    code = "import_unreadable"
