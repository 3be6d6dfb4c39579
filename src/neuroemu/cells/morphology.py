"""Neuron morphologies: load (.asc / .swc), describe in pure Python, instantiate in NEURON.

* :func:`load_morphology` validates a Neurolucida ``.asc`` or ``.swc`` file in Python (so bad input
  gives a :class:`~neuroemu.errors.MorphologyError` naming the file and line instead of a hung or
  poisoned NEURON), then runs NEURON's own Import3d readers (``Import3d_Neurolucida3`` /
  ``Import3d_SWC_read`` + ``Import3d_GUI``) in a child process and keeps the result as a
  :class:`Morphology`: a pure-Python, immutable description (sections with type, parent, connection
  point and pt3d points). Import3d is used because the published segment table of the reference
  model was built with it (section order ``dend[i]``, ``apic[i]``; soma L 23.17 um, diam 13.47 um).
* :func:`instantiate` creates NEURON sections from a :class:`Morphology` with the published rules
  (reference 2.1): the reconstructed axon is replaced by ``axon[0]``, ``axon[1]`` (L 30 um, diam 1 um,
  nseg 1, ``axon[0](0)`` at ``soma(0.5)``), ``nseg = 1 + 2*int(L/40)`` for every section, and a
  section with zero diameter gets 1 um with a warning. No mechanisms are inserted here.
"""
from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from neuroemu.cells._morphology_files import (
    IMPORT3D_TIMEOUT_S,
    SWC_TYPES,
    check_asc,
    normalised_swc,
    parse_swc,
    run_import3d,
    swc_lines,
)
from neuroemu.errors import MorphologyError

__all__ = [
    "ARRAY_NAMES",
    "IMPORT3D_TIMEOUT_S",
    "SECTION_TYPES",
    "SWC_TYPES",
    "CellSections",
    "MorphSection",
    "Morphology",
    "instantiate",
    "load_morphology",
    "nseg_for_length",
]

#: Section types, in the canonical order of :attr:`Morphology.sections`.
SECTION_TYPES: tuple[str, ...] = ("soma", "axon", "basal", "apical")
#: NEURON array name of each section type (``dend[3]`` is the 4th basal section).
ARRAY_NAMES: dict[str, str] = {"soma": "soma", "axon": "axon", "basal": "dend", "apical": "apic"}
_TYPE_OF_ARRAY = {v: k for k, v in ARRAY_NAMES.items()}

#: Published discretisation rule (Hay template ``geom_nseg``): at most ~40 um per segment.
NSEG_LENGTH_UM = 40.0
#: Replacement axon (reference 2.1): two sections of this length / diameter, nseg 1.
AXON_STUB_L_UM = 30.0
AXON_STUB_DIAM_UM = 1.0


def nseg_for_length(length_um: float) -> int:
    """Return the published number of segments ``1 + 2*int(L/40)`` for a section of length ``L``."""
    return 1 + 2 * int(length_um / NSEG_LENGTH_UM)


# --------------------------------------------------------------------------------------------
# Pure-Python description
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MorphSection:
    """One unbranched section: type, position in its array, parent and 3D points.

    ``points`` is a read-only ``(n, 4)`` float array of ``x, y, z, diam`` in um (NEURON pt3d points).
    ``parent`` is the position of the parent in :attr:`Morphology.sections` (None for the soma);
    the section's 0 end connects to ``parent(parent_x)``. ``connection_point`` is NEURON's logical
    connection point (``pt3dstyle(1, x, y, z)``) where Import3d set one, else None.
    """

    type: str
    index: int
    parent: int | None
    parent_x: float
    points: np.ndarray
    connection_point: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        pts = np.array(self.points, dtype=np.float64, copy=True)
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "parent_x", float(self.parent_x))
        if self.connection_point is not None:
            object.__setattr__(self, "connection_point", tuple(float(v) for v in self.connection_point))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MorphSection):
            return NotImplemented
        return (
            (self.type, self.index, self.parent, self.parent_x, self.connection_point)
            == (other.type, other.index, other.parent, other.parent_x, other.connection_point)
            and np.array_equal(self.points, other.points)
        )

    __hash__ = None  # type: ignore[assignment]

    @property
    def name(self) -> str:
        """NEURON-style name, e.g. ``dend[3]`` (the soma is ``soma``)."""
        if self.type == "soma":
            return "soma"
        return f"{ARRAY_NAMES[self.type]}[{self.index}]"

    @property
    def length(self) -> float:
        """Length along the 3D points in um."""
        if len(self.points) < 2:
            return 0.0
        return float(np.sum(np.linalg.norm(np.diff(self.points[:, :3], axis=0), axis=1)))

    @property
    def nseg(self) -> int:
        """Number of segments under the published rule (the axon is replaced on instantiation)."""
        return nseg_for_length(self.length)


@dataclass(frozen=True, eq=False)
class Morphology:
    """An immutable, NEURON-independent description of a neuron's sections.

    ``sections`` are in canonical order: the soma first, then axon, basal (``dend``) and apical
    (``apic``) sections, each type in index order. ``source`` names where it came from (file path
    or generator) and is used in error messages.
    """

    sections: tuple[MorphSection, ...]
    source: str = "<memory>"
    _children: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", tuple(self.sections))
        _validate_structure(self.sections, self.source)
        children: list[list[int]] = [[] for _ in self.sections]
        for i, sec in enumerate(self.sections):
            if sec.parent is not None:
                children[sec.parent].append(i)
        object.__setattr__(self, "_children", tuple(tuple(c) for c in children))

    def __eq__(self, other: object) -> bool:
        """Same sections (types, topology, points); the ``source`` label is ignored."""
        if not isinstance(other, Morphology):
            return NotImplemented
        return self.sections == other.sections

    __hash__ = None  # type: ignore[assignment]

    # ---- access -------------------------------------------------------------------------
    @property
    def soma(self) -> MorphSection:
        """The soma section."""
        return self.sections[0]

    def sections_of(self, type_: str) -> list[MorphSection]:
        """Sections of one type (``soma``, ``axon``, ``basal``, ``apical``) in index order."""
        if type_ not in SECTION_TYPES:
            raise ValueError(f"unknown section type {type_!r}; expected one of {SECTION_TYPES}")
        return [s for s in self.sections if s.type == type_]

    @property
    def basal(self) -> list[MorphSection]:
        """Basal sections (``dend[i]``)."""
        return self.sections_of("basal")

    @property
    def apical(self) -> list[MorphSection]:
        """Apical sections (``apic[i]``)."""
        return self.sections_of("apical")

    @property
    def axon(self) -> list[MorphSection]:
        """Axon sections of the reconstruction (replaced by a stub on instantiation)."""
        return self.sections_of("axon")

    def children(self, i: int) -> tuple[int, ...]:
        """Positions of the sections whose parent is section ``i``."""
        return self._children[i]

    def position(self, name: str) -> int:
        """Position in :attr:`sections` of the section called ``name`` (e.g. ``apic[50]``)."""
        for i, s in enumerate(self.sections):
            if s.name == name:
                return i
        raise KeyError(f"{self.source}: no section named {name!r}")

    # ---- geometry ------------------------------------------------------------------------
    def start_distances(self) -> np.ndarray:
        """Path distance (um) from ``soma(0.5)`` to the 0 end of every section (0 for the soma start).

        Sections attached to the soma at ``x`` start ``|x - 0.5| * L_soma`` from its centre.
        """
        lengths = [s.length for s in self.sections]
        dist = np.zeros(len(self.sections))
        dist[0] = 0.5 * lengths[0]  # soma(0) lies half a soma from its centre
        queue = list(self.children(0))
        while queue:  # parents before children, whatever the section order
            i = queue.pop()
            s = self.sections[i]
            if s.parent == 0:
                dist[i] = abs(s.parent_x - 0.5) * lengths[0]
            else:
                dist[i] = dist[s.parent] + s.parent_x * lengths[s.parent]
            queue.extend(self.children(i))
        return dist

    def summary(self) -> dict[str, Any]:
        """Counts, lengths, segment totals and path extents, computed in Python (no NEURON).

        Segment counts use the published nseg rule; ``n_inputs`` is two synapses per dendritic
        segment. Distances are path distances from ``soma(0.5)``.
        """
        start = self.start_distances()
        out: dict[str, Any] = {"source": self.source}
        soma = self.soma
        out["soma_L_um"] = round(soma.length, 3)
        out["soma_diam_um"] = round(_mean_diameter(soma.points), 3)
        for type_ in ("basal", "apical", "axon"):
            idx = [i for i, s in enumerate(self.sections) if s.type == type_]
            out[f"n_{type_}_sections"] = len(idx)
            out[f"total_{type_}_length_um"] = round(sum(self.sections[i].length for i in idx), 3)
            if type_ != "axon":
                out[f"n_{type_}_segments"] = sum(self.sections[i].nseg for i in idx)
                ends = [start[i] + self.sections[i].length for i in idx]
                out[f"max_{type_}_path_um"] = round(float(max(ends)), 3) if ends else 0.0
        out["n_segments"] = out["n_basal_segments"] + out["n_apical_segments"]
        out["n_inputs"] = 2 * out["n_segments"]
        return out

    # ---- export ---------------------------------------------------------------------------
    def to_swc(self, path: str | os.PathLike[str]) -> Path:
        """Write this morphology as an SWC file readable by :func:`load_morphology`.

        Soma children are attached to an interior soma point (Import3d then connects them at
        ``soma(0.5)`` and keeps their own first point); other children hang from their parent's last
        point, sharing it. This round-trips exactly when every non-soma child starts at its parent's
        end point with the parent's end diameter and every branching section has two or more
        children (true of :func:`~neuroemu.cells.default_morphology.default_l5pc_morphology`). SWC
        cannot store a diameter jump at a branch point: such children (100 in cell1.asc) start with
        the parent's diameter after a round trip, and a warning says so.
        """
        path = Path(path)
        lines, notes = swc_lines(self)
        if notes:
            warnings.warn(f"{path}: SWC export of {self.source} is approximate: " + "; ".join(notes), stacklevel=2)
        header = [
            f"# SWC written by neuroemu from {self.source}",
            "# id type x y z radius parent",
        ]
        path.write_text("\n".join(header + lines) + "\n")
        return path

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (see :meth:`from_dict`)."""
        return {
            "source": self.source,
            "sections": [
                {
                    "type": s.type,
                    "index": s.index,
                    "parent": s.parent,
                    "parent_x": s.parent_x,
                    "connection_point": list(s.connection_point) if s.connection_point else None,
                    "points": s.points.tolist(),
                }
                for s in self.sections
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Morphology:
        """Rebuild a :class:`Morphology` from :meth:`to_dict` output."""
        try:
            secs = [
                MorphSection(
                    type=d["type"],
                    index=int(d["index"]),
                    parent=None if d["parent"] is None else int(d["parent"]),
                    parent_x=float(d["parent_x"]),
                    points=np.asarray(d["points"], dtype=np.float64).reshape(-1, 4),
                    connection_point=tuple(d["connection_point"]) if d.get("connection_point") else None,
                )
                for d in data["sections"]
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise MorphologyError(f"{data.get('source', '<dict>')}: malformed morphology dict: {exc}") from exc
        return cls(tuple(secs), source=str(data.get("source", "<dict>")))

    def __len__(self) -> int:
        return len(self.sections)

    def __iter__(self) -> Iterator[MorphSection]:
        return iter(self.sections)


def _mean_diameter(points: np.ndarray) -> float:
    """Length-weighted mean diameter of a polyline (NEURON's ``diam`` of a one-segment section)."""
    seg = np.linalg.norm(np.diff(points[:, :3], axis=0), axis=1)
    if seg.sum() == 0:
        return float(points[:, 3].mean())
    mid = 0.5 * (points[1:, 3] + points[:-1, 3])
    return float((seg * mid).sum() / seg.sum())


def _validate_structure(sections: Sequence[MorphSection], source: str) -> None:
    """Check a section list describes one tree rooted at a single soma, with usable points."""
    if not sections:
        raise MorphologyError(f"{source}: morphology has no sections")
    if sections[0].type != "soma" or sections[0].parent is not None:
        raise MorphologyError(f"{source}: the first section must be the soma and have no parent")
    counts = {t: 0 for t in SECTION_TYPES}
    n = len(sections)
    for i, s in enumerate(sections):
        if s.type not in SECTION_TYPES:
            raise MorphologyError(f"{source}: section {i} has unknown type {s.type!r}")
        if s.index != counts[s.type]:
            raise MorphologyError(
                f"{source}: section {i} ({s.type}) has index {s.index}, expected {counts[s.type]}"
            )
        counts[s.type] += 1
        pts = s.points
        if pts.ndim != 2 or pts.shape[1] != 4 or pts.shape[0] < 2:
            raise MorphologyError(f"{source}: section {s.name} needs at least 2 points of (x, y, z, diam)")
        if not np.all(np.isfinite(pts)):
            raise MorphologyError(f"{source}: section {s.name} has non-finite coordinates or diameters")
        if np.any(pts[:, 3] < 0):
            raise MorphologyError(f"{source}: section {s.name} has a negative diameter")
        if i > 0:
            if s.parent is None or not 0 <= s.parent < n or s.parent == i:
                raise MorphologyError(f"{source}: section {s.name} has an invalid parent {s.parent!r}")
            if not 0.0 <= s.parent_x <= 1.0:
                raise MorphologyError(f"{source}: section {s.name} connects at x={s.parent_x}, outside [0, 1]")
    if counts["soma"] != 1:
        raise MorphologyError(f"{source}: {counts['soma']} soma sections; exactly one is supported")
    # every section must reach the soma without a cycle; dendrites must not hang off the axon
    for i, s in enumerate(sections):
        seen = 0
        j = i
        through_axon = False
        while sections[j].parent is not None:
            j = sections[j].parent
            through_axon |= sections[j].type == "axon"
            seen += 1
            if seen > n:
                raise MorphologyError(f"{source}: section {s.name} is part of a cycle")
        if through_axon and s.type in ("basal", "apical"):
            raise MorphologyError(
                f"{source}: dendritic section {s.name} is attached to the axon, which is replaced"
            )
    if counts["basal"] == 0:
        raise MorphologyError(f"{source}: no basal dendrite (no dend sections / SWC type 3 / (Dendrite) tree)")
    if counts["apical"] == 0:
        raise MorphologyError(f"{source}: no apical dendrite (no apic sections / SWC type 4 / (Apical) tree)")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------

_CACHE: dict[tuple[str, str], Morphology] = {}
_CACHE_MAX = 16


def load_morphology(path: str | os.PathLike[str]) -> Morphology:
    """Load a Neurolucida ``.asc`` or ``.swc`` morphology with NEURON's Import3d.

    The file is validated in Python first; any problem (missing or empty file, unknown extension,
    bad SWC columns / parent ids / negative radii / no soma, ASC without a ``CellBody`` contour or
    with unbalanced parentheses, no basal or no apical dendrite, a parse error reported by Import3d)
    raises :class:`MorphologyError` naming the file and, where possible, the line. Import3d runs in a
    child process (its output is captured, not printed). Results are cached per file content.
    """
    p = Path(path)
    if not p.exists():
        raise MorphologyError(f"{p}: morphology file not found")
    if not p.is_file():
        raise MorphologyError(f"{p}: not a regular file")
    ext = p.suffix.lower()
    if ext not in (".asc", ".swc"):
        raise MorphologyError(f"{p}: unknown morphology extension {p.suffix!r}; expected .asc or .swc")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise MorphologyError(f"{p}: cannot read morphology file: {exc}") from exc
    text = data.decode("latin-1")
    if not text.strip():
        raise MorphologyError(f"{p}: morphology file is empty")
    key = (ext, hashlib.sha256(data).hexdigest())
    if key in _CACHE:
        cached = _CACHE[key]
        return cached if cached.source == str(p) else Morphology(cached.sections, source=str(p))

    with tempfile.TemporaryDirectory(prefix="neuroemu_import3d_") as tmp:
        if ext == ".swc":
            rows = parse_swc(text, p)
            infile = Path(tmp) / "input.swc"
            infile.write_text(normalised_swc(rows))
            fmt = "swc"
        else:
            check_asc(text, p)
            infile = Path(tmp) / "input.asc"
            shutil.copyfile(p, infile)
            fmt = "asc"
        result = run_import3d(fmt, infile, p)
    morph = _from_import3d(result, str(p))
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = morph
    return morph


def _from_import3d(result: dict[str, Any], source: str) -> Morphology:
    """Turn the worker's JSON into a :class:`Morphology` in canonical section order."""
    records = result.get("sections", [])
    if not records:
        raise MorphologyError(f"{source}: Import3d found no sections (is there a soma and a dendrite?)")
    unknown = sorted({r["array"] for r in records} - set(_TYPE_OF_ARRAY))
    if unknown:
        raise MorphologyError(
            f"{source}: unsupported section types {unknown} (only soma, axon, basal and apical dendrites)"
        )
    n_soma = sum(1 for r in records if r["array"] == "soma")
    if n_soma != 1:
        raise MorphologyError(
            f"{source}: Import3d produced {n_soma} soma sections; exactly one soma section is supported"
        )
    order = sorted(
        records, key=lambda r: (SECTION_TYPES.index(_TYPE_OF_ARRAY[r["array"]]), int(r["index"]))
    )
    pos = {(r["array"], int(r["index"])): k for k, r in enumerate(order)}
    secs = []
    for r in order:
        if r.get("orientation", 0.0) != 0.0:
            raise MorphologyError(f"{source}: section {r['array']}[{r['index']}] is connected by its 1 end")
        parent = None
        if r["parent_array"] is not None:
            parent = pos[(r["parent_array"], int(r["parent_index"]))]
        elif r["array"] != "soma":
            raise MorphologyError(
                f"{source}: section {r['array']}[{r['index']}] is not connected to the soma"
            )
        pts = np.asarray(r["points"], dtype=np.float64).reshape(-1, 4)
        secs.append(
            MorphSection(
                type=_TYPE_OF_ARRAY[r["array"]],
                index=int(r["index"]),
                parent=parent,
                parent_x=float(r["parent_x"]),
                points=pts,
                connection_point=tuple(r["style"]) if r.get("style") else None,
            )
        )
    return Morphology(tuple(secs), source=source)


# --------------------------------------------------------------------------------------------
# Instantiation
# --------------------------------------------------------------------------------------------

_cell_ids = itertools.count()


class CellSections:
    """NEURON sections of one instantiated cell (no mechanisms inserted).

    Attributes: ``soma`` (a Section), ``axon`` (the 2 stub sections), ``basal`` (``dend[i]`` in
    order), ``apical`` (``apic[i]`` in order), ``all`` (soma, basal, apical, axon), ``morphology``
    and ``name``. Sections are created with ``cell=self`` so their NEURON names
    (``<name>.dend[3]``) do not clash between cells. Call :meth:`delete` to free them.
    """

    def __init__(self, morphology: Morphology, name: str | None = None) -> None:
        from neuron import h

        self.morphology = morphology
        self.name = name or f"cell{next(_cell_ids)}"
        self._short: dict[Any, str] = {}
        made: list[Any] = []
        for s in morphology.sections:
            if s.type == "axon":
                made.append(None)  # the reconstructed axon is replaced by the stub below
                continue
            sec = h.Section(name=s.name, cell=self)
            pts = s.points
            h.pt3dadd(
                h.Vector(pts[:, 0]), h.Vector(pts[:, 1]), h.Vector(pts[:, 2]), h.Vector(pts[:, 3]), sec=sec
            )
            if s.connection_point is not None:
                h.pt3dstyle(1, *s.connection_point, sec=sec)
            made.append(sec)
            self._short[sec] = s.name
        for s, sec in zip(morphology.sections, made):
            if sec is not None and s.parent is not None:
                sec.connect(made[s.parent](s.parent_x), 0)
        self.soma = made[0]
        self.basal = [sec for s, sec in zip(morphology.sections, made) if s.type == "basal"]
        self.apical = [sec for s, sec in zip(morphology.sections, made) if s.type == "apical"]
        for sec in [self.soma, *self.basal, *self.apical]:
            sec.nseg = nseg_for_length(sec.L)
        self.axon = []
        for i in range(2):
            ax = h.Section(name=f"axon[{i}]", cell=self)
            ax.L = AXON_STUB_L_UM
            ax.diam = AXON_STUB_DIAM_UM
            ax.nseg = nseg_for_length(AXON_STUB_L_UM)
            ax.connect(self.soma(0.5) if i == 0 else self.axon[0](1), 0)
            self.axon.append(ax)
            self._short[ax] = f"axon[{i}]"
        self.all = [self.soma, *self.basal, *self.apical, *self.axon]
        for sec in self.all:
            if any(seg.diam == 0 for seg in sec):
                warnings.warn(
                    f"{morphology.source}: section {self._short[sec]} has zero diameter; set to 1 um",
                    RuntimeWarning,
                    stacklevel=3,
                )
                sec.diam = 1.0

    def section_name(self, sec: Any) -> str:
        """Short name of one of this cell's sections (``soma``, ``dend[3]``, ``apic[50]``, ``axon[0]``)."""
        try:
            return self._short[sec]
        except KeyError:
            raise KeyError(f"{sec} is not a section of {self.name}") from None

    @property
    def dendritic(self) -> list[Any]:
        """Basal then apical sections: the sections that carry synapses, in channel order."""
        return [*self.basal, *self.apical]

    def delete(self) -> None:
        """Delete this cell's sections from NEURON; the object is unusable afterwards."""
        from neuron import h

        for sec in getattr(self, "all", []):
            try:
                h.delete_section(sec=sec)
            except Exception:  # already deleted
                pass
        self.all, self.basal, self.apical, self.axon = [], [], [], []
        self.soma = None
        self._short = {}

    def __repr__(self) -> str:
        return self.name


def instantiate(morphology: Morphology, name: str | None = None) -> CellSections:
    """Create NEURON sections for ``morphology`` with the published rules (see module docstring)."""
    return CellSections(morphology, name=name)
