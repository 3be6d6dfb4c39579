"""File-level helpers of :mod:`neuroemu.cells.morphology`: SWC / Neurolucida validation, the
Import3d child process, and SWC writing.

Kept separate so the morphology module holds the data model and instantiation only. Nothing here
imports NEURON; Import3d runs in ``_import3d_worker.py`` in a child process.
"""
from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neuroemu.errors import MorphologyError

#: SWC structure identifiers of each section type.
SWC_TYPES: dict[str, int] = {"soma": 1, "axon": 2, "basal": 3, "apical": 4}
_TYPE_OF_SWC = {v: k for k, v in SWC_TYPES.items()}
#: Seconds the Import3d child process may run before it is killed.
IMPORT3D_TIMEOUT_S = 300.0


# --------------------------------------------------------------------------------------------
# SWC export
# --------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    """Shortest exact text for a float (integers without a trailing .0)."""
    v = float(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def swc_lines(m: Any) -> tuple[list[str], list[str]]:
    """SWC data lines for ``m`` and a list of notes on anything not represented exactly."""
    lines: list[str] = []
    notes: list[str] = []
    last_id: dict[int, int] = {}
    first_id: dict[int, int] = {}
    next_id = itertools.count(1)

    def emit(type_: str, p: np.ndarray, pid: int) -> int:
        i = next(next_id)
        lines.append(f"{i} {SWC_TYPES[type_]} {_fmt(p[0])} {_fmt(p[1])} {_fmt(p[2])} {_fmt(p[3] / 2)} {pid}")
        return i

    soma_pts = m.soma.points
    if len(soma_pts) == 2:  # give the soma an interior point for x = 0.5 connections (area unchanged)
        soma_pts = np.vstack([soma_pts[0], soma_pts.mean(axis=0), soma_pts[1]])
    pid = -1
    soma_ids = []
    for p in soma_pts:
        pid = emit("soma", p, pid)
        soma_ids.append(pid)
    mid_id = soma_ids[len(soma_ids) // 2]
    first_id[0], last_id[0] = soma_ids[0], soma_ids[-1]

    diam_jumps = wires = odd_x = 0
    for i, s in enumerate(m.sections[1:], start=1):
        par = s.parent
        assert par is not None
        if par not in last_id:
            raise MorphologyError(f"{m.source}: cannot write SWC: section {s.name} precedes its parent")
        pts = s.points
        if par == 0:
            if s.parent_x == 0.0:
                pid = first_id[0]
            elif s.parent_x == 1.0:
                pid = last_id[0]
            else:
                pid = mid_id
            if s.parent_x != 0.5:
                odd_x += 1
            own = pts
        else:
            ppts = m.sections[par].points
            pid = last_id[par]
            if s.parent_x != 1.0:
                odd_x += 1
            if np.array_equal(pts[0, :3], ppts[-1, :3]):
                own = pts[1:]
                if pts[0, 3] != ppts[-1, 3]:
                    diam_jumps += 1
            else:
                own = pts
                wires += 1
        ids = []
        for p in own:
            pid = emit(s.type, p, pid)
            ids.append(pid)
        first_id[i], last_id[i] = ids[0], ids[-1]
    single = sum(
        1 for i, s in enumerate(m.sections) if i > 0 and len(m.children(i)) == 1
    )
    if diam_jumps:
        notes.append(f"{diam_jumps} child sections start with a diameter different from their parent's end")
    if wires:
        notes.append(f"{wires} child sections do not start at their parent's end point")
    if odd_x:
        notes.append(f"{odd_x} sections connect at an x other than soma(0.5) / parent(1)")
    if single:
        notes.append(f"{single} sections have a single child and will be merged with it")
    return lines, notes



def run_import3d(fmt: str, infile: Path, source: Path) -> dict[str, Any]:
    """Run the Import3d worker on ``infile`` in a child process and return its JSON result."""
    worker = Path(__file__).with_name("_import3d_worker.py")
    out = infile.with_name("sections.json")
    env = dict(os.environ)
    env.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    try:
        proc = subprocess.run(
            [sys.executable, str(worker), fmt, str(infile), str(out)],
            cwd=str(infile.parent),  # keeps NEURON from auto-loading an x86_64/ in the caller's cwd
            env=env,
            capture_output=True,
            text=True,
            timeout=IMPORT3D_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise MorphologyError(
            f"{source}: NEURON Import3d did not finish within {IMPORT3D_TIMEOUT_S:g} s"
        ) from exc
    log = (proc.stdout or "") + (proc.stderr or "")
    if "parse error" in log:
        detail = " ".join(log[log.index("parse error") :].split())[:300]
        raise MorphologyError(f"{source}: Import3d could not parse the file: {detail}")
    if proc.returncode != 0 or not out.is_file():
        tail = " ".join(log.split())[-400:]
        raise MorphologyError(f"{source}: NEURON Import3d failed (exit status {proc.returncode}): {tail}")
    try:
        return json.loads(out.read_text())
    except ValueError as exc:
        raise MorphologyError(f"{source}: unreadable Import3d output: {exc}") from exc



# ---- SWC validation -------------------------------------------------------------------------


@dataclass(frozen=True)
class _SwcRow:
    id: int
    type: int
    x: float
    y: float
    z: float
    radius: float
    parent: int
    line: int


def parse_swc(text: str, source: Path) -> list[_SwcRow]:
    """Parse and validate SWC text; raise :class:`MorphologyError` naming file and line on error."""
    rows: list[_SwcRow] = []
    ids: dict[int, int] = {}
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 7:
            raise MorphologyError(
                f"{source}: line {lineno}: expected 7 columns (id type x y z radius parent), got {len(fields)}"
            )
        try:
            vals = [float(f) for f in fields]
        except ValueError:
            raise MorphologyError(f"{source}: line {lineno}: non-numeric value in {line!r}") from None
        if not all(math.isfinite(v) for v in vals):
            raise MorphologyError(f"{source}: line {lineno}: non-finite value in {line!r}")
        for col, name in ((0, "id"), (1, "type"), (6, "parent")):
            if vals[col] != int(vals[col]):
                raise MorphologyError(f"{source}: line {lineno}: {name} {fields[col]!r} is not an integer")
        sid, stype, pid = int(vals[0]), int(vals[1]), int(vals[6])
        if sid < 0:
            raise MorphologyError(f"{source}: line {lineno}: negative id {sid}")
        if sid in ids:
            raise MorphologyError(f"{source}: line {lineno}: duplicate id {sid} (first on line {ids[sid]})")
        if stype not in _TYPE_OF_SWC:
            raise MorphologyError(
                f"{source}: line {lineno}: unsupported SWC type {stype} (1 soma, 2 axon, 3 basal, 4 apical)"
            )
        if vals[5] < 0:
            raise MorphologyError(f"{source}: line {lineno}: negative radius {fields[5]}")
        if pid < 0:
            pid = -1
            if rows:
                raise MorphologyError(
                    f"{source}: line {lineno}: second root point (parent -1); the file must hold one tree"
                )
            if stype != 1:
                raise MorphologyError(f"{source}: line {lineno}: the root point must be soma (type 1), got {stype}")
        elif pid not in ids:
            raise MorphologyError(
                f"{source}: line {lineno}: parent id {pid} does not refer to an earlier point"
            )
        elif not rows:
            raise MorphologyError(f"{source}: line {lineno}: the first point must be the root (parent -1)")
        ids[sid] = lineno
        rows.append(_SwcRow(sid, stype, vals[2], vals[3], vals[4], vals[5], pid, lineno))
    if not rows:
        raise MorphologyError(f"{source}: no SWC data lines")
    types = {r.type for r in rows}
    if 1 not in types:
        raise MorphologyError(f"{source}: no soma points (SWC type 1)")
    if 3 not in types:
        raise MorphologyError(f"{source}: no basal dendrite points (SWC type 3)")
    if 4 not in types:
        raise MorphologyError(f"{source}: no apical dendrite points (SWC type 4)")
    return rows


def normalised_swc(rows: list[_SwcRow]) -> str:
    """SWC text with ids renumbered 1..N in file order (parents precede children)."""
    new_id = {r.id: k for k, r in enumerate(rows, start=1)}
    out = []
    for k, r in enumerate(rows, start=1):
        pid = -1 if r.parent < 0 else new_id[r.parent]
        out.append(f"{k} {r.type} {r.x!r} {r.y!r} {r.z!r} {r.radius!r} {pid}")
    return "\n".join(out) + "\n"


# ---- ASC validation -------------------------------------------------------------------------

_ASC_TOKEN = re.compile(r'"[^"]*"|;|\(|\)|"')
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_ASC_POINT = re.compile(rf"^\(\s*({_NUM})\s+({_NUM})\s+({_NUM})\s+({_NUM})(?=[\s)])")


def check_asc(text: str, source: Path) -> None:
    """Validate Neurolucida ASC text before NEURON sees it (parentheses, strings, soma, trees).

    Top-level blocks of a Neurolucida file start with '(' in column 0; that is used to point at the
    likely place of a stray or missing parenthesis.
    """
    stack: list[int] = []
    block_end = 0  # line where the last top-level block closed
    early_close = 0  # a block closed just before an indented top-level '(' (stray ')')
    open_at_col0 = unclosed = 0  # a column-0 '(' met while the block opened at `unclosed` is open
    keywords: set[str] = set()
    strings: set[str] = set()
    for lineno, line in enumerate(text.splitlines(), start=1):
        for mo in _ASC_TOKEN.finditer(line):
            tok = mo.group()
            if tok == ";":
                break
            if tok == '"':
                raise MorphologyError(f"{source}: line {lineno}: string without a closing '\"'")
            if tok.startswith('"'):
                strings.add(tok[1:-1].strip())
            elif tok == "(":
                at_col0 = mo.start() == 0
                if not stack and not at_col0 and block_end and not early_close:
                    early_close = block_end
                if stack and at_col0 and not open_at_col0:
                    open_at_col0, unclosed = lineno, stack[0]
                stack.append(lineno)
                rest = line[mo.start() :]
                kw = re.match(r"\(\s*([A-Za-z][A-Za-z0-9_]*)\s*\)", rest)
                if kw:
                    keywords.add(kw.group(1))
                pt = _ASC_POINT.match(rest)
                if pt and float(pt.group(4)) < 0:
                    raise MorphologyError(f"{source}: line {lineno}: negative diameter {pt.group(4)}")
            else:  # ")"
                if not stack:
                    hint = f" (a block already closed at line {early_close}: stray ')' there?)" if early_close else ""
                    raise MorphologyError(f"{source}: line {lineno}: unbalanced parentheses: unmatched ')'{hint}")
                stack.pop()
                if not stack:
                    block_end = lineno
    if stack:
        if open_at_col0:
            raise MorphologyError(
                f"{source}: line {unclosed}: unbalanced parentheses: the block opened here is not closed "
                f"before the next top-level block at line {open_at_col0} (missing ')')"
            )
        raise MorphologyError(f"{source}: line {stack[-1]}: unbalanced parentheses: '(' is never closed")
    if "CellBody" not in keywords and "CellBody" not in strings:
        raise MorphologyError(f"{source}: no soma contour ((CellBody)) in the Neurolucida file")
    if "Dendrite" not in keywords:
        raise MorphologyError(f"{source}: no basal dendrite ((Dendrite) tree) in the Neurolucida file")
    if "Apical" not in keywords:
        raise MorphologyError(f"{source}: no apical dendrite ((Apical) tree) in the Neurolucida file")


