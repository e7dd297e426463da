"""The run-wide budget: reserve before sending, settle after, never cross a limit."""

from __future__ import annotations

import math
from collections.abc import Iterable

from crucible_harness._experiment import Budget

__all__ = ("BudgetGuard",)


class BudgetGuard:
    """Tracks spend and in-flight reservations per condition against a [`Budget`][crucible_harness.Budget].

    A task reserves an upper bound of its cost before it starts; when it finishes the reservation is
    replaced by the real cost. A reservation that would take spend plus in-flight reservations past a
    limit is refused, so concurrent tasks can never overspend together.
    """

    def __init__(
        self,
        budget: Budget,
        conditions: Iterable[str],
        *,
        spent: dict[str, float] | None = None,
    ) -> None:
        self.budget = budget
        self.spent: dict[str, float] = dict.fromkeys(conditions, 0.0)
        for name, value in (spent or {}).items():
            self.spent[name] = self.spent.get(name, 0.0) + value
        self.reserved: dict[str, float] = dict.fromkeys(self.spent, 0.0)
        self.largest: dict[str, float] = dict.fromkeys(self.spent, 0.0)
        self.stopped_total = False
        self.stopped: set[str] = set()

    @property
    def total_spent(self) -> float:
        """Dollars spent so far, all conditions."""
        return math.fsum(self.spent.values())

    def _total_committed(self) -> float:
        return math.fsum(self.spent.values()) + math.fsum(self.reserved.values())

    def try_reserve(self, condition: str, amount: float) -> bool:
        """Reserve `amount` for a task of `condition`; `False` (and the condition or run stops) if it would cross a limit."""
        if self.stopped_total or condition in self.stopped:
            return False
        cap = self.budget.max_per_condition
        if (
            cap is not None
            and self.spent[condition] + self.reserved[condition] + amount > cap + 1e-12
        ):
            self.stopped.add(condition)
            return False
        total = self.budget.max_total
        if total is not None and self._total_committed() + amount > total + 1e-12:
            self.stopped_total = True
            return False
        self.reserved[condition] += amount
        return True

    def settle(self, condition: str, reserved: float, actual: float) -> None:
        """Replace a reservation by the task's real cost."""
        self.reserved[condition] = max(0.0, self.reserved[condition] - reserved)
        self.spent[condition] += actual
        self.largest[condition] = max(self.largest[condition], actual)

    @property
    def halted(self) -> bool:
        """Whether any limit stopped work."""
        return self.stopped_total or bool(self.stopped)
