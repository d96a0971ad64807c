"""Each directory sync run is one `directory.sync` audit event with its counts (#11), against a real slapd."""

from __future__ import annotations

import json
from typing import Any

from audit.log import AuditLog
from identity.appkeys import DATABASE
from tests.conftest import RunningServer
from tests.identity.test_ldap import call, directory_ldif, server  # noqa: F401 - the fixture and the directory

# `slapd` (tests/identity/conftest.py) serves this module's directory_ldif(): test_ldap's people.
__all__ = ["directory_ldif", "server"]


async def sync_events(server: RunningServer) -> list[dict[str, Any]]:  # noqa: F811 - the fixture's name
    log = AuditLog(server.app[DATABASE])
    events = [json.loads(r.event) async for rows in log.rows() for r in rows]
    return [e for e in events if e["event"] == "directory.sync"]


async def test_each_sync_run_is_one_audit_event_with_counts(server: RunningServer) -> None:  # noqa: F811
    await call(server, "POST", "/v1/admin/ldap/sync", expect=200)
    await call(server, "POST", "/v1/admin/ldap/sync", expect=200)
    events = await sync_events(server)
    assert len(events) == 2
    counts = [{k: e["after"][k] for k in ("created", "updated", "deactivated", "unchanged")} for e in events]
    assert counts == [{"created": 3, "updated": 0, "deactivated": 0, "unchanged": 0},
                      {"created": 0, "updated": 0, "deactivated": 0, "unchanged": 3}]
    assert events[0]["object"]["type"] == "directory" and events[0]["object"]["id"].startswith("ldap://")
    assert events[0]["after"]["errors"] == 0 and events[0]["actor"]["credential"].startswith("key:")
