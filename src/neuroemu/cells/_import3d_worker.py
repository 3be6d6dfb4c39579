"""Run NEURON's Import3d on one morphology file and write its sections as JSON.

This script runs in a child process started by :func:`neuroemu.cells.morphology.load_morphology`
(``python _import3d_worker.py FORMAT INPUT OUTPUT``). Import3d's readers print to stdout and, on a
parse error, execute hoc ``stop``, which leaves the hoc interpreter unusable for the rest of the
process; running them in a fresh process keeps the caller's NEURON state clean and lets the caller
kill a reader that hangs. The script deliberately imports nothing from ``neuroemu``.

Output JSON: ``{"sections": [{"array", "index", "parent_array", "parent_index", "parent_x",
"orientation", "style", "points"}...]}`` where ``points`` are the pt3d points ``[x, y, z, diam]``
exactly as Import3d instantiated them and ``style`` is the logical connection point (or null).
"""
from __future__ import annotations

import json
import sys


class _Holder:
    """Plain Python object that Import3d_GUI.instantiate fills with section lists."""

    def __repr__(self) -> str:
        return "import3d_cell"


def extract(fmt: str, path: str) -> dict:
    """Read ``path`` with the Import3d reader for ``fmt`` ("asc" or "swc") and describe its sections."""
    from neuron import h

    h.load_file("stdlib.hoc")
    h.load_file("import3d.hoc")
    reader = h.Import3d_SWC_read() if fmt == "swc" else h.Import3d_Neurolucida3()
    reader.quiet = 1
    reader.input(path)
    holder = _Holder()
    gui = h.Import3d_GUI(reader, 0)
    gui.instantiate(holder)

    where: dict = {}
    arrays = {}
    for attr, value in vars(holder).items():
        if attr == "all" or not isinstance(value, list):
            continue
        arrays[attr] = value
        for i, sec in enumerate(value):
            where[sec] = (attr, i)

    records = []
    for attr, secs in arrays.items():
        for i, sec in enumerate(secs):
            parent = sec.parentseg()
            if parent is not None:
                parent_array, parent_index = where[parent.sec]
                parent_x = float(parent.x)
            else:
                parent_array, parent_index, parent_x = None, None, 0.0
            style = None
            if int(h.pt3dstyle(sec=sec)) == 1:
                x, y, z = h.ref(0.0), h.ref(0.0), h.ref(0.0)
                h.pt3dstyle(1, x, y, z, sec=sec)
                style = [float(x[0]), float(y[0]), float(z[0])]
            points = [
                [float(sec.x3d(k)), float(sec.y3d(k)), float(sec.z3d(k)), float(sec.diam3d(k))]
                for k in range(int(sec.n3d()))
            ]
            records.append(
                {
                    "array": attr,
                    "index": i,
                    "parent_array": parent_array,
                    "parent_index": parent_index,
                    "parent_x": parent_x,
                    "orientation": float(sec.orientation()),
                    "style": style,
                    "points": points,
                }
            )
    return {"sections": records}


def main(argv: list[str]) -> int:
    """Entry point: ``FORMAT INPUT OUTPUT``; returns the process exit status."""
    if len(argv) != 3:
        print("usage: _import3d_worker.py FORMAT INPUT OUTPUT", file=sys.stderr)
        return 2
    fmt, path, out = argv
    result = extract(fmt, path)
    with open(out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
