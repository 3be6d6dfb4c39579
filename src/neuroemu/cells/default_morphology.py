"""A synthetic, built-in layer-5 pyramidal cell morphology (no download, no copied coordinates).

:func:`default_l5pc_morphology` grows a deterministic (seeded) L5 pyramidal-cell-like tree with our
own procedural rules, sized so that its summary statistics resemble the published reference cell
(Hay et al. 2011 cell #1 as used by Beniaguev et al. 2021; reference section 2.2):

* soma: 23.17 um long, 13.47 um diameter, along the y axis (apical direction +y), centred at 0;
* a short axon (replaced by the standard 2 x 30 um stub on instantiation anyway);
* 8 basal trees, 84 sections, ~5.1 mm in total, longest path ~280 um, diameters ~1.0-1.9 um at
  the soma; branching sections stay >= 0.65 um, terminal ones narrow over their first fifth to thin
  tips of 0.26-0.36 um (cell1's basal tips: ~0.29 um), where clustered NMDA input gives a plateau;
* an apical trunk (10 sections, ~4.3 um at the soma, ~2.6 um at 150 um, ~2.4 um beyond 250 um,
  ~2.6 um before the main bifurcation) carrying 9 oblique trees, most of their membrane leaving the
  trunk at 100-200 um and none beyond ~400 um (as on cell1); oblique roots are 1.05-1.4 um thick
  within 280 um (0.6-1.1 um beyond) and the trees stay ~0.6-1 um thick until their terminals. This
  side-branch load makes the backpropagating action potential fade along the trunk (soma / 600 um
  ~9x with the Hay 5b biophysics), so a somatic spike alone does not trigger the Ca spike and BAC
  firing needs the pairing, as on cell1;
* the trunk splits at ~640 um into a tuft of two trees whose longest path is 1300.5 um; 109 apical
  sections, ~7.4 mm in total; three tuft branches cross the Ca "hot zone" (685-885 um), and the
  nexus (678.4 um) lies in one of the two daughters of the main bifurcation, as on cell1.

With the published discretisation (nseg = 1 + 2*int(L/40)) this comes close to the published 262 basal + 377 apical
segments (seed 0: 258 + 371 = 629 segments, 1258 inputs; 609-647 segments over 100 seeds). The
total basal length, the oblique and tuft lengths, the longest basal path (282 um to the far end)
and the longest apical path (1300.5 um) are pinned, so the apical total stays within 0.5% of the
published 7441 um; topology, angles, tortuosity and the other lengths vary with ``seed``. Only
summary statistics of the reference cell guide the rules (no coordinates are copied).

The generated cell is **synthetic**: it is a stand-in that lets the project run without the
reconstruction, not a reconstruction itself. Each child section starts with a copy of its parent's
last point (position and diameter), so :meth:`Morphology.to_swc` round-trips exactly.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from neuroemu.cells.morphology import Morphology, MorphSection

# Targets (published summary of cell1, reference 2.2): only these statistics are used.
SOMA_L_UM = 23.17
SOMA_DIAM_UM = 13.47
BASAL_TOTAL_UM = 5133.5
BASAL_MAX_PATH_UM = 282.0  # far end of the longest basal branch (its last segment centre ~272 um)
OBLIQUE_TOTAL_UM = 3250.0
TUFT_TOTAL_UM = 3565.0
APICAL_MAX_PATH_UM = 1300.5
MAIN_BIFURCATION_UM = 640.0
N_BASAL_TREES = 8
N_BASAL_BIFURCATIONS = 38  # 8 trees + 2 * 38 = 84 sections
N_OBLIQUES = 9
# Oblique trees along the trunk: (nearest, farthest branch point in um, relative size). As on cell1,
# most side-branch membrane leaves the trunk at 100-200 um, a few smaller trees up to ~400 um, and
# none between there and the main bifurcation; this load makes the backpropagating AP fade along
# the trunk instead of regenerating.
OBLIQUE_SLOTS = (
    (35.0, 65.0, 0.6), (100.0, 122.0, 1.6), (125.0, 150.0, 2.8), (160.0, 178.0, 0.3), (182.0, 198.0, 2.0),
    (235.0, 265.0, 1.5), (280.0, 302.0, 0.45), (308.0, 335.0, 0.8), (355.0, 400.0, 0.3),
)
# Trunk diameter (um) against path distance (um): thick near the soma, ~3.1 um along the oblique-rich
# proximal trunk, a narrowing to ~2.6 um beyond it, slightly thicker again before the main bifurcation.
TRUNK_DIAM_KNOTS = ((0.0, 4.3), (30.0, 3.4), (75.0, 2.75), (150.0, 2.6), (250.0, 2.4), (520.0, 2.4),
                    (545.0, 2.6), (700.0, 2.6))
N_OBLIQUE_BIFURCATIONS = 24  # 9 + 2 * 24 = 57 oblique sections
TUFT_BIFURCATIONS = (13, 7)  # two tuft trees: 27 + 15 = 42 sections; 10 trunk + 57 + 42 = 109
BASAL_INTERNAL_UM = (6.0, 34.0)  # length range of branching basal sections
OBLIQUE_INTERNAL_UM = (5.0, 35.0)  # length range of branching oblique sections
BASAL_ROOT_DIAM_UM = (1.0, 1.9)
BASAL_TIP_DIAM_UM = (0.26, 0.36)  # terminal basal sections (cell1's tip segments: median 0.29 um)
BASAL_TIP_NECK_FRACTION = 0.2  # terminal basal sections narrow to their tip diameter over this fraction
OBLIQUE_ROOT_DIAM_UM = (1.2, 1.5)  # oblique trees leaving the trunk within 280 um; thinner beyond
OBLIQUE_DISTAL_ROOT_DIAM_UM = (0.6, 1.1)
OBLIQUE_TIP_DIAM_UM = (0.3, 0.6)
TUFT_TIP_DIAM_UM = (0.25, 0.45)
STEP_UM = 8.0  # spacing of 3D points along a section
MIN_TERMINAL_UM = 5.0


@dataclass(eq=False)  # nodes compare by identity
class _Node:
    region: str  # basal, trunk, oblique, tuft, axon
    parent: int | None  # node index; None = soma
    level: int
    children: list[int] = field(default_factory=list)
    length: float = 0.0
    start_dist: float = 0.0
    d0: float = 1.0
    d1: float = 1.0
    pinned: bool = False  # length set by a layout rule; never rescaled
    diam_profile: tuple[np.ndarray, np.ndarray] | None = None  # (distance, diameter) knots; else taper d0 -> d1
    direction: np.ndarray | None = None
    points: np.ndarray | None = None


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _rotate_away(direction: np.ndarray, angle: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at ``angle`` (rad) from ``direction``, at a random azimuth around it."""
    d = _unit(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(d[0]) < 0.9 else np.array([0.0, 0.0, 1.0])
    u = _unit(np.cross(d, helper))
    w = np.cross(d, u)
    phi = rng.uniform(0.0, 2.0 * np.pi)
    return _unit(np.cos(angle) * d + np.sin(angle) * (np.cos(phi) * u + np.sin(phi) * w))


def _grow_tree(
    nodes: list[_Node], parent: int | None, level: int, n_bif: int, region: str, rng: np.random.Generator
) -> int:
    """Append a random binary subtree with ``n_bif`` bifurcations in depth-first order; return its root."""
    idx = len(nodes)
    nodes.append(_Node(region=region, parent=parent, level=level))
    if n_bif > 0:
        rest = n_bif - 1
        left = int(rng.binomial(rest, 0.5))
        for k in (left, rest - left):
            nodes[idx].children.append(_grow_tree(nodes, idx, level + 1, k, region, rng))
    return idx


def _split(total: int, n: int, rng: np.random.Generator) -> list[int]:
    """Split ``total`` bifurcations among ``n`` trees (multinomial, equal odds)."""
    return [int(v) for v in rng.multinomial(total, np.full(n, 1.0 / n))]


def _apportion(total: int, weights: np.ndarray) -> list[int]:
    """Split ``total`` bifurcations in proportion to ``weights`` (largest remainders)."""
    share = total * np.asarray(weights, dtype=float) / float(np.sum(weights))
    counts = np.floor(share).astype(int)
    for k in np.argsort(-(share - counts), kind="stable")[: total - int(counts.sum())]:
        counts[k] += 1
    return [int(v) for v in counts]


def _topology(rng: np.random.Generator) -> tuple[list[_Node], list[_Node], list[_Node]]:
    """Basal, apical and axon node lists (each in depth-first order, parents first)."""
    basal: list[_Node] = []
    for n_bif in _split(N_BASAL_BIFURCATIONS, N_BASAL_TREES, rng):
        _grow_tree(basal, None, 0, n_bif, "basal", rng)

    apical: list[_Node] = []
    weights = np.array([w for _, _, w in OBLIQUE_SLOTS]) * rng.lognormal(0.0, 0.2, size=N_OBLIQUES)
    oblique_bifs = _apportion(N_OBLIQUE_BIFURCATIONS, weights)
    parent: int | None = None
    for k in range(N_OBLIQUES + 1):
        trunk = len(apical)
        apical.append(_Node(region="trunk", parent=parent, level=k))
        if parent is not None:
            apical[parent].children.append(trunk)
        if k < N_OBLIQUES:  # an oblique tree leaves from the end of every trunk section but the last
            root = _grow_tree(apical, trunk, 0, oblique_bifs[k], "oblique", rng)
            apical[trunk].children.append(root)
        parent = trunk
    # tuft A (short daughter of the main bifurcation): both its daughters branch again;
    # tuft B (long daughter): any split
    for k, n_bif in enumerate(TUFT_BIFURCATIONS):
        root = len(apical)
        apical.append(_Node(region="tuft", parent=parent, level=0, pinned=True))
        apical[parent].children.append(root)
        rest = n_bif - 1
        left = 2 + int(rng.binomial(rest - 4, 0.5)) if k == 0 else int(rng.binomial(rest, 0.5))
        for m in (left, rest - left):
            child = _grow_tree(apical, root, 1, m, "tuft", rng)
            apical[root].children.append(child)
            apical[child].pinned = k == 0
    axon = [_Node(region="axon", parent=None, level=0)]
    return basal, apical, axon


def _start_distances(nodes: list[_Node]) -> None:
    for n in nodes:  # parents precede children
        n.start_dist = 0.0 if n.parent is None else nodes[n.parent].start_dist + nodes[n.parent].length


def _assign_lengths(basal: list[_Node], apical: list[_Node], axon: list[_Node], rng: np.random.Generator) -> None:
    """Section lengths: jittered rules, then terminal lengths rescaled to the published totals."""
    # basal: short internal sections, terminals ending 60-270 um from the soma
    for n in basal:
        if n.children:
            n.length = rng.uniform(*BASAL_INTERNAL_UM)
    _limit_depth(basal, "basal", BASAL_MAX_PATH_UM - 60.0)
    for n in basal:
        if not n.children:
            n.length = max(rng.uniform(60.0, 265.0) - n.start_dist, 20.0)
    _fit_terminals(basal, [n for n in basal if not n.children], BASAL_TOTAL_UM, BASAL_MAX_PATH_UM)

    # apical trunk: oblique branch points between 30 and 430 um, main bifurcation ~640 um
    trunk = [n for n in apical if n.region == "trunk"]
    bif = MAIN_BIFURCATION_UM + rng.uniform(-15.0, 15.0)
    cuts = np.array([rng.uniform(lo, hi) for lo, hi, _ in OBLIQUE_SLOTS])
    edges = np.concatenate([[0.0], cuts, [bif]])
    for n, length in zip(trunk, np.diff(edges)):
        n.length = float(length)
    for n in apical:
        n.pinned |= n.region == "trunk"
        if n.region == "oblique" and n.children:
            n.length = rng.uniform(*OBLIQUE_INTERNAL_UM)
        elif n.region == "tuft" and n.children:
            n.length = rng.uniform(190.0, 240.0) if n.pinned else rng.uniform(50.0, 130.0)
    tuft_roots = [i for i, n in enumerate(apical) if n.region == "tuft" and n.level == 0]
    # The daughters of the main bifurcation: A is short and splits just beyond the nexus into two
    # long branches; B is long. So three branches cross the Ca hot zone (685-885 um), as on cell1.
    apical[tuft_roots[0]].length = rng.uniform(55.0, 75.0)
    apical[tuft_roots[1]].length = rng.uniform(250.0, 290.0)
    _limit_depth(apical, "tuft", APICAL_MAX_PATH_UM - 150.0)
    for n in apical:
        if n.children:
            continue
        if n.region == "oblique":
            n.length = max(rng.uniform(50.0, 130.0), 20.0)
        elif n.region == "tuft":
            n.length = max(rng.uniform(1000.0, 1290.0) - n.start_dist, 30.0)
    _fit_terminals(apical, [n for n in apical if n.region == "oblique" and not n.children], OBLIQUE_TOTAL_UM, None)
    tuft_terms = [n for n in apical if n.region == "tuft" and not n.children]
    _fit_terminals(apical, tuft_terms, TUFT_TOTAL_UM, APICAL_MAX_PATH_UM)
    axon[0].length = 45.0


def _limit_depth(nodes: list[_Node], region: str, limit: float) -> None:
    """Shrink the region's unpinned branching sections so no terminal starts beyond ``limit``."""
    free = [n for n in nodes if n.region == region and n.children and not n.pinned]
    for _ in range(20):
        _start_distances(nodes)
        deepest = max((n for n in nodes if n.region == region and not n.children), key=lambda n: n.start_dist)
        if deepest.start_dist <= limit:
            break
        chain, k = [], deepest.parent  # free sections on the deepest path
        while k is not None:
            if nodes[k] in free:
                chain.append(nodes[k])
            k = nodes[k].parent
        free_len = sum(n.length for n in chain)
        if free_len <= 0:
            break
        factor = max((free_len - (deepest.start_dist - limit)) / free_len, 0.2)
        for n in free:
            n.length *= factor
    _start_distances(nodes)


def _fit_terminals(nodes: list[_Node], terminals: list[_Node], total: float, max_path: float | None) -> None:
    """Scale terminal lengths so the region's total length is ``total``; if ``max_path`` is given,
    first make the farthest terminal end exactly there."""
    region = terminals[0].region
    members = [n for n in nodes if n.region == region]
    _start_distances(nodes)
    if max_path is not None:
        far = max(terminals, key=lambda n: n.start_dist + n.length)
        far.length = max_path - far.start_dist
        others = [n for n in terminals if n is not far]
    else:
        others = terminals
    fixed = sum(n.length for n in members if n not in others)
    scale = (total - fixed) / sum(n.length for n in others)
    for n in others:
        n.length *= scale
        if max_path is not None:  # never beyond the pinned extent
            n.length = min(n.length, max_path - 5.0 - n.start_dist)
        n.length = max(n.length, MIN_TERMINAL_UM)
    _start_distances(nodes)


def _assign_diameters(basal: list[_Node], apical: list[_Node], axon: list[_Node], rng: np.random.Generator) -> None:
    """Start / end diameters: thinner daughters with a floor per region; branching sections taper
    slowly, terminal sections taper down to thin tips (cell1: basal and tuft tips ~0.3 um)."""
    for n in basal:
        if n.parent is None:
            n.d0 = rng.uniform(*BASAL_ROOT_DIAM_UM)
        else:
            n.d0 = max(basal[n.parent].d1 * rng.uniform(0.78, 0.92), 0.65)
        if n.children:
            n.d1 = max(n.d0 * np.exp(-n.length / 260.0), 0.65)
        else:  # narrowing over their proximal part, then thin to the tip (as cell1's basal terminals)
            n.d1 = min(rng.uniform(*BASAL_TIP_DIAM_UM), n.d0)
            neck = BASAL_TIP_NECK_FRACTION * n.length
            n.diam_profile = (np.array([n.start_dist, n.start_dist + neck, n.start_dist + n.length + 1.0]),
                              np.array([n.d0, n.d1, n.d1]))
    tuft_roots = [i for i, n in enumerate(apical) if n.region == "tuft" and n.level == 0]
    knots = np.array(TRUNK_DIAM_KNOTS)
    profile = (knots[:, 0], knots[:, 1] * rng.uniform(0.97, 1.03))
    for i, n in enumerate(apical):
        parent = apical[n.parent] if n.parent is not None else None
        if n.region == "trunk":
            n.diam_profile = profile
            n.d0 = float(np.interp(n.start_dist, *profile))
            n.d1 = float(np.interp(n.start_dist + n.length, *profile))
            continue
        assert parent is not None
        if i in tuft_roots:  # the short daughter of the main bifurcation is the thicker one
            n.d0 = rng.uniform(1.6, 1.9) if i == tuft_roots[0] else rng.uniform(1.2, 1.5)
        elif n.region == "oblique" and parent.region == "trunk":
            n.d0 = rng.uniform(*(OBLIQUE_ROOT_DIAM_UM if n.start_dist < 280.0 else OBLIQUE_DISTAL_ROOT_DIAM_UM))
        elif n.region == "oblique":  # obliques stay thick (~0.9 um) until their last branches
            n.d0 = max(parent.d1 * rng.uniform(0.8, 0.97), 0.6)
        else:
            n.d0 = max(parent.d1 * rng.uniform(0.8, 0.92), 0.4)
        tuft = n.region == "tuft"  # the tuft stays thicker for longer (cell1 tuft median ~0.7 um)
        if n.children:
            n.d1 = max(n.d0 * np.exp(-n.length / (700.0 if tuft else 400.0)), 0.4 if tuft else 0.55)
        else:
            n.d1 = min(rng.uniform(*(TUFT_TIP_DIAM_UM if tuft else OBLIQUE_TIP_DIAM_UM)), n.d0)
    axon[0].d0, axon[0].d1 = 1.2, 1.0


def _polyline(start: np.ndarray, direction: np.ndarray, length: float, d0: float, d1: float,
              rng: np.random.Generator, wiggle: float, upward: float,
              profile: tuple[np.ndarray, np.ndarray] | None = None, start_dist: float = 0.0) -> np.ndarray:
    """``(n, 4)`` points from ``start``: equal steps of ~STEP_UM along a slowly turning direction,
    diameter tapering geometrically from ``d0`` to ``d1`` (or, with ``profile``, the diameter the
    ``(distance, diameter)`` knots give at each point's path distance, the first point being
    ``start_dist`` from the soma); the path length is exactly ``length``."""
    n_steps = max(1, int(np.ceil(length / STEP_UM)))
    step = length / n_steps
    pts = [np.asarray(start, dtype=float)]
    d = _unit(direction)
    up = np.array([0.0, 1.0, 0.0])
    for _ in range(n_steps):
        d = _unit(d + wiggle * rng.normal(size=3) + upward * up)
        pts.append(pts[-1] + step * d)
    frac = np.linspace(0.0, 1.0, n_steps + 1)
    if profile is not None:
        diam = np.interp(start_dist + frac * length, *profile)
    else:
        diam = d0 * (d1 / d0) ** frac
    return np.column_stack([np.array(pts), diam])


def _child_direction(n: _Node, p: _Node, rng: np.random.Generator) -> np.ndarray:
    """Direction of a child section from its parent's, by region."""
    if n.region == "trunk":
        return _unit(p.direction + 0.05 * rng.normal(size=3))
    if n.region == "oblique" and p.region == "trunk":
        return _rotate_away(np.array([0.0, 1.0, 0.0]), rng.uniform(0.7, 1.2), rng)
    if n.region == "tuft":
        return _rotate_away(p.direction, rng.uniform(0.3, 0.6), rng)
    d = _rotate_away(p.direction, rng.uniform(0.35, 0.7), rng)
    if n.region == "basal" and d[1] > 0.5:  # keep basal trees out of the apical field
        d = _unit(d - np.array([0.0, 0.6, 0.0]))
    return d


def _layout(nodes: list[_Node], starts: dict[int, np.ndarray], rng: np.random.Generator) -> None:
    """3D points of every node. Roots start at ``starts[i]`` in their preset direction; a child's
    first point is a copy of its parent's last point (position and diameter)."""
    for i, n in enumerate(nodes):
        if n.parent is None:
            start = starts[i]
        else:
            p = nodes[n.parent]
            start = p.points[-1, :3]
            n.direction = _child_direction(n, p, rng)
        assert n.direction is not None
        n.direction = _unit(n.direction)
        wiggle = 0.04 if n.region in ("trunk", "axon") else 0.12
        upward = 0.06 if n.region == "tuft" else 0.0
        own = _polyline(start, n.direction, n.length, n.d0, n.d1, rng, wiggle, upward, n.diam_profile,
                        n.start_dist)
        if n.parent is not None:
            own[0] = nodes[n.parent].points[-1]
        n.points = np.round(own, 3)


def _to_sections(basal: list[_Node], apical: list[_Node], axon: list[_Node]) -> tuple[MorphSection, ...]:
    """MorphSections in canonical order; soma children attach at soma(0.5) (logical point: centre)."""
    ys = np.linspace(-SOMA_L_UM / 2, SOMA_L_UM / 2, 5)
    soma_pts = np.array([[0.0, y, 0.0, SOMA_DIAM_UM] for y in ys])
    secs = [MorphSection("soma", 0, None, 0.0, np.round(soma_pts, 3))]
    for type_, nodes in (("axon", axon), ("basal", basal), ("apical", apical)):
        offset = len(secs)
        for i, n in enumerate(nodes):
            if n.parent is None:
                parent, px, cp = 0, 0.5, (0.0, 0.0, 0.0)
            else:
                parent, px, cp = offset + n.parent, 1.0, None
            secs.append(MorphSection(type_, i, parent, px, n.points, cp))
    return tuple(secs)


@functools.lru_cache(maxsize=8)
def default_l5pc_morphology(seed: int = 0) -> Morphology:
    """The built-in synthetic L5 pyramidal cell (see module docstring); deterministic per ``seed``.

    Built in pure Python with a seeded NumPy generator; needs no data files and no NEURON. Export
    it with ``default_l5pc_morphology().to_swc(path)``. The result is immutable and cached.
    """
    rng = np.random.default_rng(np.random.SeedSequence([0x15C, int(seed)]))
    basal, apical, axon = _topology(rng)
    _assign_lengths(basal, apical, axon, rng)
    _assign_diameters(basal, apical, axon, rng)

    half, radius = SOMA_L_UM / 2, SOMA_DIAM_UM / 2
    starts: dict[int, np.ndarray] = {}
    azimuths = np.linspace(0.0, 2.0 * np.pi, N_BASAL_TREES, endpoint=False) + rng.uniform(0.0, 2.0 * np.pi)
    roots = [i for i, n in enumerate(basal) if n.parent is None]
    for i, a0 in zip(roots, azimuths):
        a = a0 + rng.uniform(-0.25, 0.25)
        el = rng.uniform(-0.9, 0.1)  # mostly below the horizontal plane
        basal[i].direction = np.array([np.cos(a) * np.cos(el), np.sin(el), np.sin(a) * np.cos(el)])
        starts[i] = np.array([radius * np.cos(a), rng.uniform(-0.8, 0.3) * half, radius * np.sin(a)])
    _layout(basal, starts, rng)
    apical[0].direction = np.array([0.0, 1.0, 0.0])
    _layout(apical, {0: np.array([0.0, half, 0.0])}, rng)
    axon[0].direction = np.array([0.0, -1.0, 0.0])
    _layout(axon, {0: np.array([0.0, -half, 0.0])}, rng)
    return Morphology(
        _to_sections(basal, apical, axon), source=f"default_l5pc_morphology(seed={int(seed)}) [synthetic]"
    )
