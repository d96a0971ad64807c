"""`--ramp`: judge each step of participants against the service level; the capacity is the largest
step that held."""

from __future__ import annotations

from dataclasses import dataclass

from loadtest.histogram import percentile_of
from loadtest.settings import LoadSettings, RampPlan
from loadtest.timeline import Timeline, WindowStats


@dataclass(frozen=True)
class StepResult:
    participants: int
    window: WindowStats
    join_p95_s: float | None
    missing_joins: int  # bots of this step that had not joined by its end
    breaches: list[str]

    @property
    def held(self) -> bool:
        return not self.breaches


@dataclass(frozen=True)
class RampResult:
    steps: list[StepResult]
    capacity: int  # participants of the largest step that held (0: not even the first)
    broke: bool  # False: the service level held up to the last step the run reached


def judge_step(settings: LoadSettings, plan: RampPlan, timeline: Timeline, step: int, end: float) -> StepResult:
    """The step starting at step * interval and judged up to `end` (seconds since the origin)."""
    start = step * plan.interval
    target = plan.target_at(start, settings.participants)
    first_index = plan.target_at(start - plan.interval, settings.participants)
    joins = [(t, j) for t, j in timeline.joins if first_index <= j.index < target]
    last_join = max((t for t, _ in joins), default=start)
    window_start = min(max(start, last_join) + plan.settle, end - 1.0)
    window = timeline.window(max(start, window_start), end)
    missing = (target - first_index) - len(joins)
    # A bot still joining at the end of its step took at least the whole step.
    seconds = [j.seconds for _, j in joins] + [end - start] * missing
    join_p95 = percentile_of(seconds, 95)
    breaches = settings.service_level.breaches(window.loss, window.latency_p95_ms, join_p95, window.packets)
    if missing:
        breaches.append(f"{missing} of {target - first_index} bots had not joined")
    return StepResult(target, window, join_p95, missing, breaches)


def capacity_of(steps: list[StepResult]) -> RampResult:
    capacity = 0
    for step in steps:
        if not step.held:
            return RampResult(steps, capacity, broke=True)
        capacity = step.participants
    return RampResult(steps, capacity, broke=False)
