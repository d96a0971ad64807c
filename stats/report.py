"""usage_daily read back for GET /v1/admin/stats: a series per (metric, dimension) over every day asked for,
0 where a day has no row (not rolled up yet, or nothing happened), or the rows as CSV."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from stats.days import days
from store.database import Database
from store.schema import DEFAULT_ORG, usage_daily


@dataclass(frozen=True)
class Stored:
    day: str
    metric: str
    dimension: str
    value: float
    computed_at: float


async def read_rows(db: Database, first: date, last: date, org: str = DEFAULT_ORG) -> list[Stored]:
    """Organisation `org`'s rows of first..last."""
    list(days(first, last))  # the range's checks
    async with db.read() as conn:
        result = await conn.execute(
            select(usage_daily.c.day, usage_daily.c.metric, usage_daily.c.dimension, usage_daily.c.value,
                   usage_daily.c.computed_at)
            .where(usage_daily.c.org_id == org, usage_daily.c.day >= first.isoformat(),
                   usage_daily.c.day <= last.isoformat())
            .order_by(usage_daily.c.day, usage_daily.c.metric, usage_daily.c.dimension))
        return [Stored(r.day, r.metric, r.dimension, float(r.value), float(r.computed_at)) for r in result]


def _number(value: float) -> float | int:
    return int(value) if value.is_integer() else value


def as_series(first: date, last: date, rows: list[Stored]) -> dict[str, Any]:
    """{"from", "to", "days": [...], "computed": {day: at}, "metrics": {metric: {dimension: [value per day]}}}"""
    names = [d.isoformat() for d in days(first, last)]
    index = {d: i for i, d in enumerate(names)}
    metrics: dict[str, dict[str, list[float | int]]] = {}
    computed: dict[str, float] = {}
    for r in rows:
        series = metrics.setdefault(r.metric, {}).setdefault(r.dimension, [0] * len(names))
        series[index[r.day]] = _number(r.value)
        computed[r.day] = max(computed.get(r.day, 0.0), r.computed_at)
    return {"from": names[0], "to": names[-1], "days": names, "computed": computed, "metrics": metrics}


def as_csv(rows: list[Stored]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["day", "metric", "dimension", "value"])
    for r in rows:
        writer.writerow([r.day, r.metric, r.dimension, _number(r.value)])
    return out.getvalue()
