"""Selecting networks: the one rule every sweep, study, learning curve and report uses.

- :func:`pick_best`: the best finished row by validation spike AUC (validation selects, test reports); rows
  without a finite validation AUC rank after those with one, by test AUC; ties go to the smaller network.
- :func:`select_best`: :func:`pick_best` per (cell, depth) -- or any other column.
- :func:`smallest_reaching`: the finished row with the fewest parameters whose *test* AUC reaches a target
  (ties: the shallower, then the higher AUC) -- a description of the trained networks, as in the published
  figure, not a model selection.
"""
from __future__ import annotations

from typing import Any, Iterable

from neuroemu.results.rows import SweepRow, finite, read_rows

__all__ = ["finished", "pick_best", "select_best", "smallest_reaching", "smallest_reaching_index"]

Rows = Iterable["SweepRow | dict[str, Any]"]


def finished(rows: Rows) -> list[SweepRow]:
    """The rows trained and evaluated (status ``done``)."""
    return [r for r in read_rows(rows) if r.done]


def _score(r: SweepRow, select_on: str, fallback: str) -> tuple:
    a, b = r.get(select_on), r.get(fallback)
    return (1 if finite(a) else 0, a if finite(a) else -1.0, b if finite(b) else -1.0, -(r.n_parameters or 0))


def pick_best(rows: Rows, select_on: str = "val_spike_auc",
              fallback: str = "spike_auc") -> tuple[SweepRow | None, str]:
    """(best finished row, what selected it: ``validation AUC``, ``test AUC (...)`` or ``none``)."""
    done = [r for r in finished(rows) if finite(r.get(select_on)) or finite(r.get(fallback))]
    if not done:
        return None, "none"
    best = max(done, key=lambda r: _score(r, select_on, fallback))
    if finite(best.get(select_on)):
        return best, "validation AUC"
    return best, "test AUC (no validation trial had a spike)"


def select_best(rows: Rows, by: str = "depth", select_on: str = "val_spike_auc",
                fallback: str = "spike_auc") -> list[SweepRow]:
    """Per (cell, ``by`` value), :func:`pick_best` of the finished rows; in increasing ``by`` order per cell."""
    groups: dict[tuple, list[SweepRow]] = {}
    for r in finished(rows):
        groups.setdefault((str(r.cell), r.get(by)), []).append(r)
    out = []
    for _, g in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] is None, kv[0][1] or 0)):
        best, _ = pick_best(g, select_on, fallback)
        if best is not None:
            out.append(best)
    return out


def smallest_reaching_index(rows: list[dict[str, Any]], target_auc: float, auc: str = "spike_auc",
                            size: str = "n_parameters") -> int | None:
    """Index of the row (JSON dicts; a missing status counts as done) with the fewest ``size`` whose ``auc``
    reaches ``target_auc`` -- ties: smaller depth, then higher AUC -- or None. The rule of
    :func:`smallest_reaching`, for callers that keep their own rows (the report's figures)."""
    ok = [k for k, r in enumerate(rows) if (r.get("status") or "done") == "done" and finite(r.get(auc))
          and r[auc] >= target_auc]
    if not ok:
        return None
    return min(ok, key=lambda k: (rows[k].get(size) or 0, rows[k].get("depth") or 0, -rows[k][auc]))


def smallest_reaching(rows: Rows, target_auc: float, auc: str = "spike_auc",
                      size: str = "n_parameters") -> SweepRow | None:
    """The finished row with the fewest ``size`` whose ``auc`` reaches ``target_auc`` (ties: smaller depth, then
    higher AUC), or None."""
    typed = read_rows(rows)
    k = smallest_reaching_index([r.to_dict() for r in typed], target_auc, auc, size)
    return None if k is None else typed[k]
