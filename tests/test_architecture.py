"""The house rules of docs/ARCHITECTURE.md, checked on the source: stages import only earlier stages (in the
data-flow order), and no module imports itself back through others -- function-level imports included."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "neuroemu"

#: The stages in data-flow order; a module may import its own stage and earlier ones only. The first entry is
#: the shared core (top-level modules of the package).
ORDER = ["<core>", "cells", "inputs", "simulation", "dataset", "models", "pretrained", "evaluation", "training",
         "results", "report", "study", "cli"]
CORE = {"neuroemu", "neuroemu.config", "neuroemu.errors", "neuroemu.io", "neuroemu.parallel"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in SRC.rglob("*.py")}


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The most specific module of ``name`` (``neuroemu.a.b.func`` -> ``neuroemu.a.b``)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(mod: str, path: Path, modules: dict[str, Path]) -> set[str]:
    out = set()
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] if base else []
        else:
            continue
        for n in names:
            if n == "neuroemu" or n.startswith("neuroemu."):
                out.add(_resolve(n, modules))
    out.discard(mod)
    return out


def _stage(mod: str) -> str:
    if mod in CORE:
        return "<core>"
    if mod == "neuroemu.__main__":
        return "cli"
    return mod.split(".")[1]


GRAPH = {m: _imports(m, p, _modules()) for m, p in _modules().items()}


def test_every_stage_is_in_the_documented_order():
    stages = {_stage(m) for m in GRAPH}
    assert stages <= set(ORDER), f"stages not in ORDER (add them to docs/ARCHITECTURE.md and here): {stages - set(ORDER)}"
    doc = (SRC.parents[1] / "docs" / "ARCHITECTURE.md").read_text()
    flow = next(line for line in doc.splitlines() if line.startswith("core ─>"))
    assert [s.strip() for s in flow.split("─>")] == ["core"] + ORDER[1:], "the order in docs/ARCHITECTURE.md differs"
    for stage in ORDER[1:]:
        assert f"`neuroemu.{stage}`" in doc, f"docs/ARCHITECTURE.md does not describe the stage {stage}"


@pytest.mark.parametrize("mod", sorted(GRAPH))
def test_imports_follow_the_data_flow(mod):
    rank = ORDER.index(_stage(mod))
    backwards = sorted(t for t in GRAPH[mod] if ORDER.index(_stage(t)) > rank)
    assert not backwards, f"{mod} ({_stage(mod)}) imports later stages: {backwards}"


def test_no_module_cycles():
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []
    counter = [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH.get(v, ()):
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert not cycles, f"module import cycles: {cycles}"
