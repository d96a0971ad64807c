"""The audit log's CSV export neutralises cells a spreadsheet would run as formulas (audit/web.py)."""

from __future__ import annotations

import csv
import io
import json

from audit.chain import StoredRow
from audit.web import csv_rows


def test_formula_cells_are_quoted_including_tab_and_carriage_return_leads() -> None:
    risky = ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "\t=cmd|' /C calc'!A0", "\r=1+1"]
    rows = [StoredRow(seq=i + 1, at=1.0, event_type="user.update", actor=value,
                      event=json.dumps({"time": "2026-12-01T00:00:00Z", "object": {"type": "user", "id": value}}),
                      prev_hash="0" * 64, hash="1" * 64) for i, value in enumerate(risky)]
    read = list(csv.reader(io.StringIO(csv_rows(rows))))
    cells = [cell for row in read for cell in row]
    for value in risky:
        assert "'" + value in cells and value not in cells, value
    assert "user.update" in cells  # plain cells untouched
