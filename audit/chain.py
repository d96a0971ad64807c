"""The hash chain: hash = SHA-256(prev_hash ‖ event), hex; the first row's prev_hash is 64 zeros.

`prev_hash` enters as its 64 ASCII hex characters, `event` as its UTF-8 bytes. Verifying walks the rows in
seq order and names the first one that breaks: its hash does not match its text (edited), its prev_hash is
not the previous row's hash (a row before it deleted, or rows reordered), its seq does not follow (deleted),
the seq inside its event is not its own (moved), or a filter column disagrees with its event (edited to hide
from `GET /v1/audit`). A deleted last row shows as the counter standing past the last row.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from audit.event import parse_iso_time

GENESIS = "0" * 64


def chain_hash(prev_hash: str, event_text: str) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + event_text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StoredRow:
    seq: int
    at: float
    event_type: str
    actor: str
    event: str
    prev_hash: str
    hash: str
    org_id: str = "default"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int  # rows checked
    bad_seq: int | None = None  # the first bad row (None: intact, or only the tail is missing)
    reason: str = ""


def _row_problem(row: StoredRow, prev_hash: str) -> str:
    if row.prev_hash != prev_hash:
        return "prev_hash is not the previous row's hash (a row was deleted or the rows were reordered)"
    if chain_hash(row.prev_hash, row.event) != row.hash:
        return "hash does not match the event (the row was edited)"
    try:
        doc = json.loads(row.event)
        if doc["seq"] != row.seq:
            return f"the event says seq {doc['seq']} (rows were reordered)"
        if (doc["event"], doc["actor"]["login"], doc.get("org_id", "default")) != (
                row.event_type, row.actor, row.org_id) or abs(
                parse_iso_time(doc["time"]) - row.at) > 0.001:
            return "event_type, actor, org_id or at disagree with the event (the row was edited)"
    except (ValueError, KeyError, TypeError):
        return "the event is not an audit event document"
    return ""


class ChainVerifier:
    """Checks rows fed in seq order, page by page; `result` says whether the chain held."""

    def __init__(self) -> None:
        self._prev_hash, self._expected, self._count = GENESIS, 1, 0
        self.broken: Verdict | None = None

    def feed(self, rows: Iterable[StoredRow]) -> bool:
        """False once a row is bad (the rest need not be read)."""
        for row in rows:
            if self.broken is not None:
                return False
            if row.seq != self._expected:
                self.broken = Verdict(False, self._count, self._expected,
                                      f"row {self._expected} is missing (the next row is seq {row.seq})")
                return False
            problem = _row_problem(row, self._prev_hash)
            if problem:
                self.broken = Verdict(False, self._count, row.seq, problem)
                return False
            self._prev_hash, self._expected, self._count = row.hash, self._expected + 1, self._count + 1
        return self.broken is None

    def result(self, counter: int | None) -> Verdict:
        """`counter`: the audit_seq counter read before the rows (the last seq handed out by then)."""
        if self.broken is not None:
            return self.broken
        last = self._expected - 1
        if counter is not None and counter > last:
            return Verdict(False, self._count, self._expected,
                           f"the log ends at seq {last} but {counter} were written: rows {last + 1}-{counter} "
                           "are missing")
        return Verdict(True, self._count)


def verify_rows(rows: Iterable[StoredRow], counter: int | None) -> Verdict:
    verifier = ChainVerifier()
    verifier.feed(rows)
    return verifier.result(counter)
