"""The experiment record: who, what, when, and where its events are stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import attrs

from crucible_core.render import RenderMixin, View

__all__ = ("TelemetryExperiment", "Status")

Status: TypeAlias = Literal["running", "stopped", "archived"]
"""The life-cycle state of an experiment."""


def _tuple(value: Any) -> tuple[str, ...]:
    return tuple(value)


def _mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


@attrs.define(frozen=True, kw_only=True)
class TelemetryExperiment(RenderMixin):
    """A snapshot of one experiment, as [`get_experiment`][crucible_telemetry.get_experiment] sees it.

    Examples:
        >>> import crucible_telemetry as ct
        >>> with ct.experiment("doc", condition="control") as exp:
        ...     exp.status
        'running'
        >>> ct.get_experiment(exp.id).status
        'stopped'
    """

    id: str
    """Unique, time-ordered id, `"exp_<ULID>"`."""
    name: str
    """Human name; several experiments may share one (e.g. one per condition)."""
    hypothesis: str | None = None
    """What the experiment is meant to show."""
    condition: str = "default"
    """The experiment's condition (arm), e.g. `"treatment"`; events may override it through context."""
    tags: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    """Free labels to find experiments by."""
    metadata: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping)
    """JSON-compatible details (model settings, dataset revision, ...)."""
    started_at: dt.datetime
    """When it started (UTC)."""
    stopped_at: dt.datetime | None = None
    """When it stopped (UTC), or `None` while running."""
    status: Status = "running"
    """`"running"`, `"stopped"` or `"archived"`."""
    sample_size: int | None = None
    """The planned number of samples, if one was given."""
    event_count: int = 0
    """Events captured so far."""
    store: str = "memory"
    """Where the events live: `"memory"`, `"sqlite:<path>"` or a PostgreSQL URL without its password."""

    @property
    def duration(self) -> float | None:
        """Seconds from start to stop, or `None` while running."""
        if self.stopped_at is None:
            return None
        return (self.stopped_at - self.started_at).total_seconds()

    def _view(self) -> View:
        return View(
            title=f"Experiment {self.name!r}",
            facts=[
                ("id", self.id),
                ("status", self.status),
                ("condition", self.condition),
                ("hypothesis", self.hypothesis),
                ("tags", ", ".join(self.tags) or None),
                ("started_at", self.started_at.isoformat()),
                (
                    "stopped_at",
                    self.stopped_at.isoformat() if self.stopped_at else None,
                ),
                ("events", self.event_count),
                ("sample_size", self.sample_size),
                ("store", self.store),
            ],
        )
