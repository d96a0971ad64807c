"""Directory sync and sign-in cost against a real slapd: `python -m loadtest.ldap_sync [--users 10000]`.

Starts Debian's slapd (StartTLS, tests/identity/slapd.py) holding N people in 100 departments (`研发部/组K`) and
two mapped groups (one gives a role, one fills a synced channel with a fifth of the people), then times, on a
fresh SQLite store: the first sync, a second sync with nothing changed (it must write nothing), a sync after 1 %
of the people changed title, and a series of sign-in binds (Directory.authenticate: service bind, search, bind
as the user). CPU is this process's (every thread; ldap3 and the sync) and slapd's, from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from chat.bus import LocalBus
from chat.directory_sync import DirectorySync
from chat.service import ChatService
from chat.sql_store import SqlChatStore
from common.config import Config
from identity.directory import Directory, DirectorySettings
from identity.group_map import parse_group_map
from identity.passwords import AccountStore
from store.database import Database
from tests.identity.slapd import SERVICE_DN, SERVICE_PW, SUFFIX, Slapd, group_ldif, person_ldif, start_slapd

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


class LoopLag:
    """The event loop's longest stall while running (a 10 ms ticker's worst lateness): what media and chat on
    the same loop would feel during a sync."""

    async def __aenter__(self) -> LoopLag:
        self.worst = 0.0

        async def tick() -> None:
            while True:
                before = time.perf_counter()
                await asyncio.sleep(0.01)
                self.worst = max(self.worst, time.perf_counter() - before - 0.01)
        self._task = asyncio.create_task(tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()


class Meter:
    """Wall time, this process's CPU and slapd's CPU over a block."""

    def __init__(self, slapd_pid: int) -> None:
        self.slapd_pid = slapd_pid

    def __enter__(self) -> Meter:
        self.wall, self.cpu, self.slapd = time.perf_counter(), time.process_time(), _cpu_of(self.slapd_pid)
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.slapd = _cpu_of(self.slapd_pid) - self.slapd

    def figures(self) -> dict[str, float]:
        return {"wall_s": round(self.wall, 3), "convene_cpu_s": round(self.cpu, 3), "slapd_cpu_s": round(self.slapd, 3)}


def directory_ldif(users: int) -> str:
    people = [person_ldif(f"u{i:05d}", f"password-{i:05d}", f"用户 {i}", f"研发部/组{i % 100}", "Engineer",
                          f"u{i:05d}@example.org") for i in range(users)]
    return "".join(people) + group_ldif("admins", [f"u{i:05d}" for i in range(0, users, 1000)]) \
        + group_ldif("staff", [f"u{i:05d}" for i in range(0, users, 5)])


GROUP_MAP = f"""
[[group]]
dn = "cn=admins,ou=groups,{SUFFIX}"
role = "admin"

[[group]]
dn = "cn=staff,ou=groups,{SUFFIX}"
channels = ["staff"]
synced = true
"""


def _settings(slapd: Slapd, tmp: Path) -> DirectorySettings:
    config = Config(data_dir=tmp, ldap_url=slapd.url, ldap_bind_dn=SERVICE_DN, ldap_bind_password=SERVICE_PW,
                    ldap_base_dn=SUFFIX, ldap_ca_file=slapd.ca_file)
    settings = DirectorySettings.from_config(config)
    assert settings is not None
    return settings


async def _run(users: int, binds: int, tmp: Path) -> dict[str, Any]:
    started = time.perf_counter()
    slapd = start_slapd(tmp, directory_ldif(users))
    out: dict[str, Any] = {"users": users, "slapd_load_s": round(time.perf_counter() - started, 2)}
    db = Database.for_config(None, tmp / "data")
    (tmp / "data").mkdir()
    await db.open()
    try:
        accounts = AccountStore(db)
        directory = Directory(_settings(slapd, tmp))
        sync = DirectorySync(directory, parse_group_map(GROUP_MAP), db, ChatService(SqlChatStore(db), LocalBus()),
                             accounts, accounts.disable)
        meter = Meter(slapd.process.pid)
        gc.collect()
        gc.freeze()  # as `convene serve` does once started: collections then skip what start-up made
        for label in ("first_sync", "second_sync_no_change"):
            async with LoopLag() as lag:
                with meter:
                    report = await sync.run()
            out[label] = {**meter.figures(), **report.counts(), "writes": report.writes,
                          "loop_stall_max_ms": round(lag.worst * 1000, 1)}
        changes = "".join(f"dn: uid=u{i:05d},ou=people,{SUFFIX}\nchangetype: modify\nreplace: title\n"
                          f"title: Senior Engineer\n\n" for i in range(0, users, 100))
        await asyncio.to_thread(slapd.modify, changes)
        with meter:
            report = await sync.run()
        out["sync_after_1pct_changed"] = {**meter.figures(), **report.counts(), "writes": report.writes}
        with meter:
            for i in range(binds):
                await asyncio.to_thread(directory.authenticate, f"u{i % users:05d}", f"password-{i % users:05d}")
        per = meter.figures()
        out["sign_in_bind"] = {"binds": binds, "wall_ms_each": round(per["wall_s"] / binds * 1000, 2),
                               "convene_cpu_ms_each": round(per["convene_cpu_s"] / binds * 1000, 2),
                               "slapd_cpu_ms_each": round(per["slapd_cpu_s"] / binds * 1000, 2)}
        return out
    finally:
        await db.close()
        slapd.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--binds", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="convene-ldap-") as tmp:
        result = asyncio.run(_run(args.users, args.binds, Path(tmp)))
    result["cores"] = os.cpu_count()
    print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
