"""Typed errors of the webhooks (Slack's reasons where Slack has one: invalid_payload, no_text)."""

from __future__ import annotations

from common.errors import BadRequest, Forbidden, NotFound


class InvalidPayload(BadRequest):
    """An incoming webhook's body that is not a Slack message: not JSON, not `payload=` JSON, or wrong types."""

    code = "invalid_payload"


class NoText(BadRequest):
    """An incoming webhook's message with nothing to show: no text, attachments or blocks."""

    code = "no_text"


class HookNotFound(NotFound):
    code = "hook_not_found"


class HookDisabled(Forbidden):
    """The hook's owner was deactivated: what they set up stops with their access (delete or remake the hook)."""

    code = "hook_disabled"


class HookOwnerLeft(HookDisabled):
    """The hook's owner is no longer a member of its channel: the hook posts only where its owner may."""

    code = "hook_owner_left"
