"""`--ramp`: add participants step by step, judge each step against the service level, and find the
capacity: the largest step that held.

A step that breaks is held one more interval (no new bots) and judged again: on a shared machine a
neighbour's burst can break one window, and a capacity should not hinge on it. It breaks for good
when the second window breaks too.
"""

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
    retry: bool = False  # the second look at a step that broke once

    @property
    def held(self) -> bool:
        return not self.breaches


@dataclass(frozen=True)
class RampResult:
    steps: list[StepResult]
    capacity: int  # participants of the largest step that held (0: not even the first)
    broke: bool  # False: the service level held up to the last step the run reached


class RampState:
    """Where the ramp is: the current step's participants, since when, and who joined for it."""

    def __init__(self, plan: RampPlan, maximum: int, join_rate: float) -> None:
        self.plan = plan
        self.maximum = maximum
        self.join_rate = join_rate
        self.start = 0.0
        self.base = 0  # participants before this step
        self.first_new = 0  # index of this step's first bot
        self.goal = min(maximum, plan.step)
        self.retry = False
        self.done = False
        self.broke = False
        self.steps: list[StepResult] = []

    def target(self, t: float) -> int:
        """Bots that should have been told to join by `t` (at `join_rate` from the step's start)."""
        return min(self.goal, self.base + 1 + int(max(0.0, t - self.start) * self.join_rate))

    def due(self, t: float) -> bool:
        return not self.done and t >= self.start + self.plan.interval

    def judge(self, settings: LoadSettings, timeline: Timeline, end: float) -> StepResult:
        joins = [(t, j) for t, j in timeline.joins if self.first_new <= j.index < self.goal]
        last_join = max((t for t, _ in joins), default=self.start)
        # Whole, fully reported seconds only, at least one.
        complete = max(min(end, timeline.complete_until()), float(int(self.start)) + 1.0)
        window_start = min(max(self.start, last_join) + self.plan.settle, complete - 1.0)
        window = timeline.window(float(int(window_start)), complete)
        missing = (self.goal - self.first_new) - len(joins)
        # A bot still joining at the end of its step took at least the whole step.
        seconds = [j.seconds for _, j in joins] + [end - self.start] * missing
        join_p95 = percentile_of(seconds, 95)
        breaches = settings.service_level.breaches(window.loss, window.latency_p95_ms, join_p95, window.packets)
        if missing:
            breaches.append(f"{missing} of {self.goal - self.first_new} bots had not joined")
        return StepResult(self.goal, window, join_p95, missing, breaches, retry=self.retry)

    def advance(self, result: StepResult, t: float) -> None:
        """Next step after `result`, judged at `t`: a bigger one, a second look, or the end."""
        self.steps.append(result)
        self.start = t
        if result.held:
            if self.goal >= self.maximum:
                self.done = True
                return
            self.base = self.first_new = self.goal
            self.goal = min(self.maximum, self.goal + self.plan.step)
            self.retry = False
        elif not self.retry:
            self.retry = True
            self.base = self.goal  # hold: nobody new joins
        else:
            self.done = self.broke = True

    def result(self) -> RampResult:
        capacity = 0
        for step in self.steps:
            if step.held:
                capacity = max(capacity, step.participants)
            elif step.retry:
                break
        return RampResult(self.steps, capacity, broke=self.broke)
