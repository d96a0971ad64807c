"""The ChatStore interface: what the chat service needs from storage. chat.sql_store implements it on
the SQL store layer (store/: embedded SQLite, or PostgreSQL for several processes) and passes the
contract test suite (tests/chat/test_store_contract.py) on both backends.

Ordering: every write takes the next value of one counter. A message's `ord` is the value when it was
created (history order); its `seq` the value of its last change (the sync cursor). Writes become
visible in counter order, so "everything with seq > cursor" never skips a change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from chat.model import (
    Channel,
    FileMeta,
    Membership,
    Message,
    OrgSettings,
    SearchQuery,
    User,
)

Mutation = Callable[[Message], Message]


class ChatStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    # Organisation
    async def get_org(self, org_id: str = "default") -> OrgSettings: ...

    async def put_org(self, org: OrgSettings, org_id: str = "default") -> None: ...

    async def put_user(self, user: User) -> None: ...

    async def get_user(self, login: str) -> User | None: ...

    async def get_users(self, logins: Sequence[str]) -> dict[str, User]:
        """The users of these logins that exist, by login (one read)."""
        ...

    async def list_users(self, org: str | None = None) -> list[User]: ...

    # Channels and membership
    async def create_channel(self, channel: Channel, members: Sequence[str]) -> Channel:
        """Stores a new channel; raises ChannelExists when the name is taken."""
        ...

    async def update_channel(self, channel: Channel) -> None: ...

    async def get_channel(self, channel_id: str) -> Channel | None: ...

    async def find_channel(self, name: str, org: str = "default") -> Channel | None: ...

    async def list_channels(self, kind: str | None = None, org: str | None = None) -> list[Channel]: ...

    async def add_members(self, channel_id: str, logins: Sequence[str]) -> None: ...

    async def remove_members(self, channel_id: str, logins: Sequence[str]) -> None: ...

    async def members(self, channel_id: str) -> list[str]: ...

    async def is_member(self, channel_id: str, login: str) -> bool: ...

    async def memberships(self, login: str) -> list[Membership]:
        """The caller's channels with the last read `ord` and the unread count after it."""
        ...

    async def channel_ids_of(self, login: str) -> list[str]:
        """Ids of the channels login is a member of (cheap: no unread counts)."""
        ...

    async def set_read(self, channel_id: str, login: str, ord_: int) -> None: ...

    # Messages
    async def insert_message(self, message: Message) -> tuple[Message, bool]:
        """Stores a new message and returns it with ord/seq. When (author, client_id) was seen
        before, returns the stored message and False instead (idempotent retries)."""
        ...

    async def insert_many(self, messages: Sequence[Message]) -> int:
        """Bulk import (same rules as insert_message, one transaction or pipeline); returns how many
        were new."""
        ...

    async def get_message(self, message_id: str) -> Message | None: ...

    async def by_client_id(self, author: str, client_id: str) -> Message | None: ...

    async def mutate_message(self, message_id: str, change: Mutation) -> Message:
        """Applies `change` atomically (it may raise to refuse) and stores the result with a new seq."""
        ...

    async def history(self, channel_id: str, after: int | None, before: int | None, limit: int,
                      thread: str | None = None) -> list[Message]:
        """Messages by ord, ascending: after `after`, or the last `limit` before `before` (or latest)."""
        ...

    async def changes(self, channel_ids: Sequence[str], since: int, limit: int) -> list[Message]:
        """Messages of these channels changed after `since`, by seq ascending."""
        ...

    async def current_seq(self) -> int: ...

    async def search(self, channel_ids: Sequence[str], query: SearchQuery) -> list[Message]:
        """Non-recalled messages matching the query (chat.textindex.relevance > 0; inline filters from:,
        in:, before:, after:, has:file), most relevant first, then newest."""
        ...

    async def tasks_of(self, assignee: str, open_only: bool) -> list[Message]: ...

    async def due_tasks(self, until: float, org: str | None = None) -> list[Message]:
        """Open tasks whose due time is at or before `until` (in organisation `org`'s channels; None: anyone's)."""
        ...

    async def channel_orgs(self) -> list[str]:
        """The organisations that have channels (so may have tasks)."""
        ...

    async def expired_messages(self, channel_id: str, before: float, limit: int) -> list[str]:
        """Ids of non-recalled messages created before `before` (for the retention policy)."""
        ...

    # Files
    async def put_file(self, meta: FileMeta) -> None: ...

    async def get_file(self, file_id: str) -> FileMeta | None:
        """The record with `channels` = channels of its live attaching messages (nothing for a missing id)."""
        ...

    async def attach_file(self, file_id: str, message_id: str, channel_id: str, at: float) -> None:
        """Message `message_id` in `channel_id` carries the file: its members may read it. The first
        attach sets `attached_at`; a missing file is ignored."""
        ...

    async def detach_file(self, file_id: str, message_id: str, channel_id: str) -> None:
        """The message is gone (recalled, expired): `channel_id` leaves `channels` unless another live
        message there still carries the file."""
        ...

    async def unattached_files(self, before: float, limit: int) -> list[FileMeta]:
        """Uploads created before `before` that were never attached to a message, oldest first."""
        ...

    async def delete_unattached_file(self, file_id: str) -> bool:
        """Deletes the record if it is still unattached (atomically against attach_file); True if deleted."""
        ...

    async def sha_in_use(self, sha256: str) -> bool:
        """Whether any file record still points at this blob."""
        ...

    async def uploaded_bytes(self, uploader: str, since: float) -> int:
        """Total size of the stored files `uploader` created at or after `since` (the guest quota)."""
        ...
