"""Which directory groups give which role and which channels (--ldap-group-map FILE, TOML).

    [[group]]
    dn = "cn=convene-admins,ou=groups,dc=example,dc=org"
    role = "admin"                      # admin | member | guest

    [[group]]
    dn = "cn=frontend,ou=groups,dc=example,dc=org"
    channels = ["frontend", "eng-all"]  # members are added to these team channels (made when missing)
    synced = true                       # and whoever is not in the group is removed from them

Groups nest: a group listed as a member of a mapped group gives its own members (and its groups' members, down
to identity.directory.MAX_NESTING levels; a cycle is followed once) that group's role and channels.

A person in several groups gets the highest of their roles; in none that names a role, "member". Without any
`role` in the file the sync leaves roles alone (people keep what an admin gave them). Owners are never changed.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from common.errors import InvalidConfig
from identity.directory import normalize_dn

MAPPED_ROLES = ("guest", "member", "admin")  # lowest first; owner and bot are never given by a directory
CHANNEL_NAME = re.compile(r"^[\w][\w.\-]{0,63}$")


@dataclass(frozen=True)
class GroupRule:
    dn: str  # normalized (identity/directory.normalize_dn)
    role: str | None
    channels: tuple[str, ...]
    synced: bool


@dataclass(frozen=True)
class GroupMap:
    rules: tuple[GroupRule, ...] = ()

    @property
    def maps_roles(self) -> bool:
        return any(rule.role for rule in self.rules)

    @property
    def group_dns(self) -> list[str]:
        return list(dict.fromkeys(rule.dn for rule in self.rules))

    def role_for(self, groups: set[str]) -> str:
        """The highest role of the groups (normalized DNs) a person is in; "member" when none gives one."""
        roles = [rule.role for rule in self.rules if rule.role and rule.dn in groups]
        return max(roles, key=MAPPED_ROLES.index) if roles else "member"

    def channels(self) -> dict[str, tuple[set[str], bool]]:
        """channel name -> (the groups that fill it, whether it is synced: any rule marking it synced makes it so)."""
        out: dict[str, tuple[set[str], bool]] = {}
        for rule in self.rules:
            for name in rule.channels:
                groups, synced = out.get(name, (set(), False))
                out[name] = (groups | {rule.dn}, synced or rule.synced)
        return out


def _rule(raw: object, where: str) -> GroupRule:
    if not isinstance(raw, dict) or not isinstance(raw.get("dn"), str) or not raw["dn"].strip():
        raise InvalidConfig(f"{where}: each [[group]] needs dn = \"...\"")
    unknown = set(raw) - {"dn", "role", "channels", "synced"}
    if unknown:
        raise InvalidConfig(f"{where}: unknown keys {sorted(unknown)}")
    role = raw.get("role")
    if role is not None and role not in MAPPED_ROLES:
        raise InvalidConfig(f"{where}: role must be one of {', '.join(MAPPED_ROLES)}")
    channels = raw.get("channels", [])
    if not isinstance(channels, list) or not all(isinstance(c, str) and CHANNEL_NAME.match(c) for c in channels):
        raise InvalidConfig(f"{where}: channels is a list of channel names (letters, digits, '.', '-', '_')")
    synced = raw.get("synced", False)
    if not isinstance(synced, bool):
        raise InvalidConfig(f"{where}: synced is true or false")
    return GroupRule(dn=normalize_dn(raw["dn"]), role=role, channels=tuple(channels), synced=synced)


def parse_group_map(text: str, where: str = "group map") -> GroupMap:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidConfig(f"{where}: {exc}") from exc
    groups = data.get("group", [])
    if set(data) - {"group"} or not isinstance(groups, list):
        raise InvalidConfig(f"{where}: the file holds [[group]] tables only")
    return GroupMap(tuple(_rule(raw, f"{where}, group {i + 1}") for i, raw in enumerate(groups)))


def load_group_map(path: Path | None) -> GroupMap:
    if path is None:
        return GroupMap()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidConfig(f"--ldap-group-map {path}: {exc.strerror}") from exc
    return parse_group_map(text, str(path))
