"""Typed results shared by sweeps, learning curves, studies and reports: statuses, result rows, findings, and
the one rule for selecting networks. Report reads these; nothing here imports a stage above it."""
from neuroemu.results.rows import TABLE_COLUMNS, SweepRow, read_rows, write_table
from neuroemu.results.selection import finished, pick_best, select_best, smallest_reaching
from neuroemu.results.status import State, Status

__all__ = ["State", "Status", "SweepRow", "TABLE_COLUMNS", "read_rows", "write_table", "finished", "pick_best",
           "select_best", "smallest_reaching"]
