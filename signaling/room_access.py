"""Who may start a meeting or invite to one over the rooms REST: an admin API key, as before, or a signed-in
person (session cookie with its CSRF header, or a user token) whose role holds the permission in the
organisation's table (identity/permissions.py: start_meeting, invite_guests).

Other API keys and meeting tokens keep the answers they had (`403 forbidden`, `out_of_scope`): the person path
opens only for credentials that name a person.
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from chat.auth import Principal
from chat.web import CHAT_API
from common.errors import NotPermitted
from identity.apikeys import PREFIX
from identity.appkeys import PERMISSIONS
from identity.auth import credential_of, require_admin_key
from identity.permissions import Permission, require
from identity.signin import SESSION_COOKIE
from identity.tokens import Grants
from signaling.appkeys import CONFIG, MEETINGS, TOKENS


def _names_a_person(request: web.Request) -> bool:
    """A session cookie without a bearer header, or a bearer user token (a bad token is refused here, 401)."""
    if not request.headers.get("Authorization"):
        return bool(request.cookies.get(SESSION_COOKIE))
    value = credential_of(request)
    if value is None or value.startswith(PREFIX):
        return False
    return request.app[TOKENS].verify(value).is_user_token


async def admin_key_or_person(request: web.Request, *permissions: Permission) -> Principal | None:
    """None for an admin API key; the signed-in person when their role holds every one of `permissions`
    (`403 not_permitted` naming the first missing one); otherwise the admin-key refusal as before."""
    if CHAT_API not in request.app or not _names_a_person(request):
        await require_admin_key(request)
        return None
    api = request.app[CHAT_API]
    person = await api.who(request, write=True)  # each call may start a meeting: as costly as a chat write
    table = await request.app[PERMISSIONS].table(person.org)
    for permission in permissions:
        require(person.user, permission, table)
    return person


async def require_also(request: web.Request, person: Principal | None, permission: Permission) -> None:
    """A person needs `permission` too for what they asked (admin keys hold everything)."""
    if person is not None:
        require(person.user, permission, await request.app[PERMISSIONS].table(person.org))


async def check_person_invite(request: web.Request, person: Principal, moderator: bool, room: str) -> None:
    """A person's invite is for a guest (guest_identity): it grants no moderation; inviting to a room with no
    meeting starts one (start_meeting)."""
    if moderator:
        raise NotPermitted("invites made by people do not grant moderation", permission="invite_guests")
    if await request.app[MEETINGS].live(room) is None:
        await require_also(request, person, Permission.START_MEETING)


def guest_identity() -> str:
    """The identity of a guest a person invites: `guest-` and 64 random bits, never a login someone typed (a
    meeting token acts as the user its identity names, and chat keeps a guest row under it)."""
    return f"guest-{secrets.token_hex(8)}"


def opener_token(request: web.Request, person: Principal, room: str, meeting_id: str) -> dict[str, Any]:
    """The person who started a meeting over REST joins it as its moderator, under their own login."""
    config = request.app[CONFIG]
    token = request.app[TOKENS].mint(room, person.user.login, name=person.user.name or person.user.login,
                                     grants=Grants(moderator=True), ttl_seconds=config.default_token_ttl_seconds,
                                     meeting=meeting_id)
    return {"token": token, "identity": person.user.login}
