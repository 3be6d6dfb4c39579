"""The segment table: one row per dendritic segment, in input-channel order.

Row ``k`` is segment ``k``: basal segments first (sections ``dend[0], dend[1], ...``, each by
increasing x), then apical ones (``apic[0], ...``). Segment ``k`` receives excitatory dense input
column ``k`` (``channel_exc``) and inhibitory dense column ``n_segments + k`` (``channel_inh``, the
published numbering, reference 2.2); in :class:`~neuroemu.inputs.spikes.InputSpikes` both its excitatory and its
inhibitory events use channel ``k`` (``segment_index``).

Regions: ``basal`` for basal segments; on the apical tree (the nexus is found by :func:`nexus_site`):

* ``tuft_rule="branch"`` (default): ``tuft`` = every apical section distal to the branch point where
  the nexus section begins (the nexus section, its sibling(s) and all their descendants: on cell1.asc
  the two daughters of the main bifurcation at 626.8 um, ``apic[37]`` and ``apic[50]``, and their
  subtrees, 180 segments = channels 379..558); ``trunk`` = the apical ancestors of the nexus section
  (the soma-to-bifurcation path); ``oblique`` = all other apical sections.
* ``tuft_rule="published"``: ``tuft`` = the whole subtree rooted at the nexus section's parent
  (the trunk section that ends at the main bifurcation); ``trunk`` = its ancestors. On cell1.asc
  this is exactly the published figure split (tuft = channels 366..558, subtree of ``apic[36]``,
  391-1291 um from the soma).
"""
from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterator, TextIO

import numpy as np

#: Published nexus distance on cell1: apic[50](0.9), 678.4 um from soma(0.5) (reference 2.2).
NEXUS_DISTANCE_UM = 678.4
REGIONS = ("basal", "oblique", "trunk", "tuft")
TUFT_RULES = ("branch", "published")
_FORMAT = "neuroemu.segment_table/1"


@dataclass(frozen=True)
class NexusSite:
    """A recording site on the apical trunk: section ``apic[section_index]`` at segment centre ``x``."""

    section: str
    section_index: int
    x: float
    seg_index: int
    distance_um: float

    def segment(self, cell_sections: Any) -> Any:
        """The NEURON segment of this site on an instantiated cell."""
        return cell_sections.apical[self.section_index](self.x)


@dataclass(frozen=True)
class Segment:
    """One row of the segment table (see module docstring for the channel and region rules)."""

    channel_exc: int
    channel_inh: int
    segment_index: int
    type: str
    region: str
    section: str
    section_index: int
    seg_index_in_section: int
    x: float
    nseg: int
    seg_length_um: float
    diam_um: float
    area_um2: float
    path_dist_from_soma_center_um: float
    x0: float
    y0: float
    z0: float
    x1: float
    y1: float
    z1: float


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(Segment))
_INT_COLUMNS = {"channel_exc", "channel_inh", "segment_index", "section_index", "seg_index_in_section", "nseg"}
_STR_COLUMNS = {"type", "region", "section"}


@dataclass
class SegmentTable:
    """Rows of :class:`Segment` in channel order, plus the nexus site used for the regions."""

    rows: list[Segment]
    nexus: NexusSite | None = None
    tuft_rule: str = "branch"

    @property
    def n_segments(self) -> int:
        """Number of dendritic segments (= excitatory = inhibitory channels)."""
        return len(self.rows)

    @property
    def n_inputs(self) -> int:
        """Number of input channels: one excitatory and one inhibitory per segment."""
        return 2 * len(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Segment]:
        return iter(self.rows)

    def __getitem__(self, k: int) -> Segment:
        return self.rows[k]

    def column(self, name: str) -> np.ndarray:
        """One column as a numpy array (int, float or str dtype)."""
        if name not in COLUMNS:
            raise KeyError(f"unknown segment-table column {name!r}; columns are {COLUMNS}")
        values = [getattr(r, name) for r in self.rows]
        if name in _INT_COLUMNS:
            return np.asarray(values, dtype=np.int64)
        if name in _STR_COLUMNS:
            return np.asarray(values, dtype=str)
        return np.asarray(values, dtype=np.float64)

    def columns(self) -> dict[str, np.ndarray]:
        """All columns as numpy arrays, in :data:`COLUMNS` order."""
        return {name: self.column(name) for name in COLUMNS}

    def indices(self, *, type: str | None = None, region: str | None = None) -> np.ndarray:
        """Segment indices (channel_exc) of one type and/or region."""
        keep = [
            r.segment_index
            for r in self.rows
            if (type is None or r.type == type) and (region is None or r.region == region)
        ]
        return np.asarray(keep, dtype=np.int64)

    def counts(self) -> dict[str, int]:
        """Number of segments per type and per region."""
        out = {t: int(sum(r.type == t for r in self.rows)) for t in ("basal", "apical")}
        out.update({f"region_{g}": int(sum(r.region == g for r in self.rows)) for g in REGIONS})
        return out

    # ---- serialisation -----------------------------------------------------------------------
    def to_csv(self, path_or_buffer: str | os.PathLike[str] | TextIO | None = None) -> str | None:
        """Write the table as CSV (columns :data:`COLUMNS`); return the text when no target is given."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for r in self.rows:
            writer.writerow([_csv_value(getattr(r, c)) for c in COLUMNS])
        text = buf.getvalue()
        if path_or_buffer is None:
            return text
        if hasattr(path_or_buffer, "write"):
            path_or_buffer.write(text)  # type: ignore[union-attr]
        else:
            Path(path_or_buffer).write_text(text)
        return None

    def to_dict(self) -> dict[str, Any]:
        """Plain dict: format tag, nexus, column names and one list of values per row."""
        return {
            "format": _FORMAT,
            "nexus": asdict(self.nexus) if self.nexus is not None else None,
            "tuft_rule": self.tuft_rule,
            "columns": list(COLUMNS),
            "data": [[getattr(r, c) for c in COLUMNS] for r in self.rows],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise to JSON (see :meth:`from_json`)."""
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentTable:
        """Rebuild a table from :meth:`to_dict` output; raises ``ValueError`` on a malformed dict."""
        if data.get("format") != _FORMAT:
            raise ValueError(f"segment table: unknown format {data.get('format')!r}, expected {_FORMAT!r}")
        cols = list(data.get("columns", []))
        missing = [c for c in COLUMNS if c not in cols]
        if missing:
            raise ValueError(f"segment table: missing columns {missing}")
        rows = []
        for i, values in enumerate(data.get("data", [])):
            if len(values) != len(cols):
                raise ValueError(f"segment table: row {i} has {len(values)} values, expected {len(cols)}")
            rec = dict(zip(cols, values))
            rows.append(Segment(**{c: _coerce(c, rec[c]) for c in COLUMNS}))
        nexus = data.get("nexus")
        return cls(rows, NexusSite(**nexus) if nexus else None, str(data.get("tuft_rule", "branch")))

    @classmethod
    def from_json(cls, text: str) -> SegmentTable:
        """Parse JSON written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text))


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6f}"
    return v


def _coerce(name: str, v: Any) -> Any:
    if name in _INT_COLUMNS:
        return int(v)
    if name in _STR_COLUMNS:
        return str(v)
    return float(v)


# ------------------------------------------------------------------------------------------------
# Building from an instantiated cell
# ------------------------------------------------------------------------------------------------


def _distance(h: Any, origin: Any, seg: Any) -> float:
    return float(h.distance(origin, seg))


def apical_path_to_farthest_tip(cell_sections: Any) -> list[Any]:
    """Apical sections from the apical root to the tip with the largest path distance (inclusive)."""
    from neuron import h

    apical = list(cell_sections.apical)
    if not apical:
        raise ValueError(f"{cell_sections}: the cell has no apical sections")
    origin = cell_sections.soma(0.5)
    tip = max(apical, key=lambda sec: _distance(h, origin, sec(1.0)))
    members = set(apical)
    path = [tip]
    while True:
        parent = path[-1].parentseg()
        if parent is None or parent.sec not in members:
            break
        path.append(parent.sec)
    return path[::-1]


def nexus_site(cell_sections: Any, distance_um: float = NEXUS_DISTANCE_UM) -> NexusSite:
    """The nexus: on the path from the soma to the most distant apical tip, the segment centre whose
    path distance from ``soma(0.5)`` is closest to ``distance_um`` (default 678.4 um).

    On cell1.asc this is ``apic[50]`` at x = 0.8333 (the segment holding the published
    ``apic[50](0.9)``), 678.39 um from the soma centre.
    """
    from neuron import h

    origin = cell_sections.soma(0.5)
    index = {sec: i for i, sec in enumerate(cell_sections.apical)}
    best: tuple[float, float, Any, int, float] | None = None
    for sec in apical_path_to_farthest_tip(cell_sections):
        for j, seg in enumerate(sec):
            d = _distance(h, origin, seg)
            key = abs(d - distance_um)
            if best is None or key < best[0]:
                best = (key, d, sec, j, seg.x)
    assert best is not None
    _, d, sec, j, x = best
    i = index[sec]
    return NexusSite(section=f"apic[{i}]", section_index=i, x=float(x), seg_index=j, distance_um=float(d))


def _segment_endpoints(sec: Any, nseg: int) -> np.ndarray:
    """(nseg, 6) array of x0, y0, z0, x1, y1, z1: segment ends interpolated along the pt3d points."""
    n3d = int(sec.n3d())
    out = np.full((nseg, 6), np.nan)
    if n3d < 2:
        return out
    arc = np.array([sec.arc3d(i) for i in range(n3d)])
    xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n3d)])
    bounds = np.linspace(0.0, float(sec.L), nseg + 1)
    pts = np.column_stack([np.interp(bounds, arc, xyz[:, k]) for k in range(3)])
    out[:, :3] = pts[:-1]
    out[:, 3:] = pts[1:]
    return out


def segment_table(
    cell_sections: Any, nexus: NexusSite | float | None = None, tuft_rule: str = "branch"
) -> SegmentTable:
    """Build the segment table of an instantiated cell (:class:`~neuroemu.cells.morphology.CellSections`).

    ``nexus`` is a :class:`NexusSite`, a distance in um passed to :func:`nexus_site`, or None for
    the default distance (678.4 um). With ``tuft_rule`` (see the module docstring) it sets the
    trunk / tuft / oblique regions.
    """
    from neuron import h

    if tuft_rule not in TUFT_RULES:
        raise ValueError(f"tuft_rule: unknown value {tuft_rule!r}; expected one of {TUFT_RULES}")
    if not isinstance(nexus, NexusSite):
        nexus = nexus_site(cell_sections, NEXUS_DISTANCE_UM if nexus is None else float(nexus))
    apical = list(cell_sections.apical)
    index = {sec: i for i, sec in enumerate(apical)}

    def apical_parent(sec: Any) -> Any:
        p = sec.parentseg()
        return p.sec if p is not None and p.sec in index else None

    nexus_sec = apical[nexus.section_index]
    tuft_root = nexus_sec
    if tuft_rule == "published" and apical_parent(nexus_sec) is not None:
        tuft_root = apical_parent(nexus_sec)
    # trunk: strict apical ancestors of the tuft root
    trunk: set[Any] = set()
    sec = apical_parent(tuft_root)
    while sec is not None:
        trunk.add(sec)
        sec = apical_parent(sec)
    # tuft: off-trunk subtrees rooted at the tuft root or, for "branch", at any of its siblings
    branch_parent = apical_parent(tuft_root)
    tuft: set[Any] = set()
    for s in apical:
        if s in trunk:
            continue
        root = s
        while apical_parent(root) is not None and apical_parent(root) not in trunk:
            root = apical_parent(root)
        sibling = tuft_rule == "branch" and branch_parent is not None and apical_parent(root) == branch_parent
        if root == tuft_root or sibling:
            tuft.add(s)

    origin = cell_sections.soma(0.5)
    rows: list[Segment] = []
    groups = [("basal", "dend", list(cell_sections.basal)), ("apical", "apic", apical)]
    n_total = sum(int(s.nseg) for _, _, secs in groups for s in secs)
    k = 0
    for type_, prefix, secs in groups:
        for i, sec in enumerate(secs):
            if type_ == "basal":
                region = "basal"
            elif sec in trunk:
                region = "trunk"
            elif sec in tuft:
                region = "tuft"
            else:
                region = "oblique"
            nseg = int(sec.nseg)
            ends = _segment_endpoints(sec, nseg)
            for j, seg in enumerate(sec):
                rows.append(
                    Segment(
                        channel_exc=k,
                        channel_inh=n_total + k,
                        segment_index=k,
                        type=type_,
                        region=region,
                        section=f"{prefix}[{i}]",
                        section_index=i,
                        seg_index_in_section=j,
                        x=float(seg.x),
                        nseg=nseg,
                        seg_length_um=float(sec.L) / nseg,
                        diam_um=float(seg.diam),
                        area_um2=float(seg.area()),
                        path_dist_from_soma_center_um=_distance(h, origin, seg),
                        x0=float(ends[j, 0]),
                        y0=float(ends[j, 1]),
                        z0=float(ends[j, 2]),
                        x1=float(ends[j, 3]),
                        y1=float(ends[j, 4]),
                        z1=float(ends[j, 5]),
                    )
                )
                k += 1
    return SegmentTable(rows, nexus, tuft_rule)
