"""Statuses of runs, sweep configurations, sweeps and studies, and their text form in JSON files.

The text forms are the file format: ``done``, ``failed: <why>``, ``complete``, ``incomplete: <what is
missing>``, ``running``, ``completed`` (a training run), ``interrupted``, ...; :meth:`Status.parse` reads them
back.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["State", "Status"]


class State(str, Enum):
    """What a status says, without its detail."""

    RUNNING = "running"
    DONE = "done"            # one trained and evaluated configuration
    COMPLETED = "completed"  # a training run that reached its budget, schedule end or early stopping
    COMPLETE = "complete"    # a sweep, learning curve or study with every part done
    INCOMPLETE = "incomplete"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    MISSING = "missing"      # a configuration with no result on disk

    def __str__(self) -> str:  # "done", not "State.DONE"
        return self.value


@dataclass(frozen=True)
class Status:
    """A state and an optional detail (``failed: TrainingError: NaN loss at step 12``)."""

    state: State
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.state.value}: {self.detail}" if self.detail else self.state.value

    @property
    def ok(self) -> bool:
        """Finished without a problem (done, completed or complete)."""
        return self.state in (State.DONE, State.COMPLETED, State.COMPLETE)

    @classmethod
    def parse(cls, text: "str | Status | None") -> "Status":
        """The status of its text form; unknown words are kept as the detail of ``incomplete``."""
        if isinstance(text, Status):
            return text
        text = str(text or "missing")
        head, _, detail = text.partition(":")
        try:
            return cls(State(head.strip()), detail.strip())
        except ValueError:
            return cls(State.INCOMPLETE, text)

    @classmethod
    def done(cls) -> "Status":
        """A configuration trained and evaluated."""
        return cls(State.DONE)

    @classmethod
    def failed(cls, detail: str) -> "Status":
        """A failure, with what went wrong."""
        return cls(State.FAILED, detail)

    @classmethod
    def of_parts(cls, n_failed: int = 0, n_not_trained: int = 0, running: bool = False) -> "Status":
        """The status of a collection (sweep, learning curve): complete, running, or incomplete with counts."""
        if running:
            return cls(State.RUNNING)
        parts = ([f"{n_failed} failed"] if n_failed else []) + ([f"{n_not_trained} not trained"] if n_not_trained else [])
        return cls(State.INCOMPLETE, ", ".join(parts)) if parts else cls(State.COMPLETE)
