"""Nested directory groups in the group map, against a real slapd: a group inside a mapped group gives its members
the mapped role and channels (two levels down), a cycle (a group inside itself, through another) ends without
looping and still counts the people on it, and a chain deeper than MAX_NESTING is cut there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from chat.web import CHAT_API
from identity.appkeys import DATABASE
from identity.directory import MAX_NESTING
from store.schema import chat_users
from tests.conftest import running_server, server_config
from tests.identity.slapd import SERVICE_DN, SERVICE_PW, SUFFIX, Slapd, person_ldif, start_slapd

PEOPLE = ("ann", "ben", "cat", "dan", "eve")


def group(cn: str, *members: str) -> str:
    """A groupOfNames whose members are people (a name) or groups ("g:" and the group's cn)."""
    lines = [f"dn: cn={cn},ou=groups,{SUFFIX}", "objectClass: groupOfNames", f"cn: {cn}"]
    for m in members:
        lines.append(f"member: cn={m[2:]},ou=groups,{SUFFIX}" if m.startswith("g:") else
                     f"member: uid={m},ou=people,{SUFFIX}")
    return "\n".join(lines) + "\n\n"


def chain(depth: int) -> str:
    """deep-0 holds deep-1 holds … deep-{depth}, which holds eve: eve is `depth` levels below deep-0."""
    return "".join(group(f"deep-{i}", f"g:deep-{i + 1}") for i in range(depth)) + group(f"deep-{depth}", "eve")


def directory_ldif() -> str:
    return ("".join(person_ldif(p, f"{p}-password-1") for p in PEOPLE)
            + group("admins", "ann", "g:leads")  # ann directly; ben and cat through leads, cat two levels down
            + group("leads", "ben", "g:team-leads")
            + group("team-leads", "cat")
            + group("cycle-a", "g:cycle-b", "dan")  # cycle-a holds cycle-b holds cycle-a
            + group("cycle-b", "g:cycle-a", "ben")
            + chain(MAX_NESTING + 1))


GROUP_MAP = f"""
[[group]]
dn = "cn=admins,ou=groups,{SUFFIX}"
role = "admin"

[[group]]
dn = "cn=cycle-a,ou=groups,{SUFFIX}"
channels = ["cycle"]
synced = true

[[group]]
dn = "cn=deep-0,ou=groups,{SUFFIX}"
channels = ["deep"]
"""


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    server = start_slapd(tmp_path, directory_ldif())
    yield server
    server.stop()


async def test_nested_groups_give_roles_and_channels(slapd: Slapd, tmp_path: Path) -> None:
    groups = tmp_path / "groups.toml"
    groups.write_text(GROUP_MAP)
    config = server_config(tmp_path / "data", ldap_url=slapd.url, ldap_bind_dn=SERVICE_DN,
                           ldap_bind_password=SERVICE_PW, ldap_base_dn=SUFFIX, ldap_ca_file=slapd.ca_file,
                           ldap_group_map=groups, ldap_sync_interval_seconds=0)
    async with running_server(config) as server, aiohttp.ClientSession() as http:
        async with http.post(server.url + "/v1/admin/ldap/sync",
                             headers={"Authorization": f"Bearer {server.api_key}"}) as resp:
            report = await resp.json()
            assert resp.status == 200 and report["created"] == len(PEOPLE), report
        async with server.app[DATABASE].read() as conn:
            roles = dict((await conn.execute(select(chat_users.c.login, chat_users.c.role))).all())
        assert {p: roles[p] for p in PEOPLE} == {"ann": "admin", "ben": "admin", "cat": "admin", "dan": "member",
                                                 "eve": "member"}
        store = server.app[CHAT_API].service.store
        cycle = await store.find_channel("cycle")
        assert cycle is not None and set(await store.members(cycle.id)) == {"ben", "dan"}
        # eve is MAX_NESTING + 1 levels below deep-0: past the cap, so not in its channel (made, and empty).
        deep = await store.find_channel("deep")
        assert deep is not None and set(await store.members(deep.id)) == set()
