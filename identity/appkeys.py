"""Typed keys for the identity state an aiohttp application carries (set by the front door's factory)."""

from __future__ import annotations

from aiohttp import web

from identity.apikeys import ApiKeyStore
from identity.meetings import MeetingLedger
from identity.orgs import OrgDirectory
from identity.permission_store import PermissionStore
from identity.tokens import TokenIssuer
from store.database import Database

TOKENS = web.AppKey("tokens", TokenIssuer)
API_KEYS = web.AppKey("api_keys", ApiKeyStore)
MEETINGS = web.AppKey("meetings", MeetingLedger)
# The organisations' permission tables: `await app[PERMISSIONS].require(principal, "read_audit")`.
PERMISSIONS = web.AppKey("permissions", PermissionStore)
# The process's one store (opened first, closed last by the front door; chat and identity share it).
DATABASE = web.AppKey("database", Database)
# The organisations and their Host names (identity/orgs.py); the front door resolves each request's with it.
ORGS = web.AppKey("orgs", OrgDirectory)
