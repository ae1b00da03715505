"""The import graph of mrd_backend and mrd_blender_addon, read from the source (ast, nothing imported): no cycle
among module-level imports, no cycle even counting the imports inside functions, no bpy in the backend, and no
module named `optimize` (that name is the public function `mrd_backend.optimize`)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("mrd_backend", "mrd_blender_addon")
# Imports inside functions that close a cycle on purpose (the import graph's only ones): importer -> imported: why.
KNOWN_LAZY_EDGES = {
    ("mrd_backend.sweep.cell", "mrd_backend.cli"):
        "a sweep asks the whole `mrd` parser whether its optimize command has --resume, and that parser in turn "
        "registers the sweep command",
}


def _modules() -> dict[str, tuple[Path, bool]]:
    """dotted name -> (file, is a package's __init__)."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _runs_at_import(node: ast.AST, parents: dict) -> bool:
    """Whether an import statement runs when its module is imported: not inside a function, not under
    `if TYPE_CHECKING:`."""
    p = parents.get(node)
    while p is not None:
        if isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            return False
        if isinstance(p, ast.If) and "TYPE_CHECKING" in ast.unparse(p.test):
            return False
        p = parents.get(p)
    return True


def _targets(name: str, is_pkg: bool, node: ast.AST, modules, parents: bool) -> list[str]:
    """The in-package modules an import statement names; with `parents`, also the packages that importing them runs
    first (importing a.b.c runs a and a.b), except the importer's own packages, which are already being imported."""
    if isinstance(node, ast.Import):
        wanted = [a.name for a in node.names]
    else:
        if node.level:
            base = name.split(".") if is_pkg else name.split(".")[:-1]
            base = base[:len(base) - node.level + 1]
            base = ".".join(base + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
    out = []
    for w in wanted:
        parts = w.split(".")
        for i in range(1 if parents else len(parts), len(parts) + 1):
            t = ".".join(parts[:i])
            if t in modules and t not in own and t not in out:
                out.append(t)
    return out


def _graphs():
    modules = _modules()
    top, every, imported = {}, {}, {}
    for name, (path, is_pkg) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        top[name], every[name], imported[name] = set(), set(), set()
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            at_top = _runs_at_import(node, parents)
            if isinstance(node, ast.Import):
                imported[name] |= {(a.name.split(".")[0], at_top) for a in node.names}
            elif node.level == 0 and node.module:
                imported[name].add((node.module.split(".")[0], at_top))
            # at import time a package's __init__ really runs first; inside a function every module is loaded
            # already, so there only the module named counts
            every[name].update(_targets(name, is_pkg, node, modules, parents=False))
            if at_top:
                top[name].update(_targets(name, is_pkg, node, modules, parents=True))
    return top, every, imported


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle (a list of modules, first == last), or None."""
    state, stack = {}, []

    def visit(n):
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def test_no_import_cycle_at_module_level():
    top, _, _ = _graphs()
    assert len(top) > 80  # the walk found the packages
    cycle = _cycle(top)
    assert cycle is None, "module-level import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_counting_imports_inside_functions():
    _, every, _ = _graphs()
    for a, b in KNOWN_LAZY_EDGES:
        assert b in every[a], f"{a} no longer imports {b}: drop it from KNOWN_LAZY_EDGES"
        every[a].discard(b)
    cycle = _cycle(every)
    assert cycle is None, "import cycle (through a function-level import): " + " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_backend_never_imports_bpy():
    _, _, imported = _graphs()
    users = sorted(n for n, mods in imported.items()
                   if n.split(".")[0] == "mrd_backend" and {m for m, _ in mods} & {"bpy", "bmesh", "mathutils"})
    assert users == []


def test_no_module_named_optimize():
    # mrd_backend.optimize must stay the public function, whatever was imported before
    found = [p for p in (ROOT / "mrd_backend").rglob("optimize*") if p.stem == "optimize"]
    assert found == []
    assert (ROOT / "mrd_backend" / "optimization" / "loop.py").is_file()


def test_blender_side_imports_only_the_numpy_part():
    """What the add-on's client loads (scene/ and the root helpers it needs) imports, at module level, no Mitsuba,
    Dr.Jit or torch module of ours (render/, objectives/ but its catalogue) and nothing from optimization/."""
    top, _, imported = _graphs()
    seen, todo = set(), ["mrd_backend", "mrd_backend.errors", "mrd_backend.scene.spec", "mrd_backend.scene.io",
                         "mrd_backend.scene.cameras", "mrd_backend.scene.environment", "mrd_backend.scene.meshes",
                         "mrd_backend.scene.lights", "mrd_backend.scene.principled", "mrd_backend.protocol",
                         "mrd_backend.config", "mrd_backend.objectives.catalogue", "mrd_backend.outputs.naming"]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(top.get(n, ()))
    heavy = {"mitsuba", "drjit", "torch", "torchvision", "timm", "open_clip", "lpips", "matplotlib", "ray", "wandb"}
    assert sorted(n for n in seen if {m for m, at_top in imported.get(n, ()) if at_top} & heavy) == []
    light = {"mrd_backend.objectives", "mrd_backend.objectives.catalogue"}  # the model table, no network code
    assert sorted(n for n in seen - light if n.startswith(("mrd_backend.render", "mrd_backend.objectives",
                                                          "mrd_backend.evidence", "mrd_backend.cli",
                                                          "mrd_backend.outputs.folder",
                                                          "mrd_backend.optimization"))) == []


def test_protocol_is_one_stdlib_file_both_ends_read():
    """The add-on's client loads protocol.py by its path, so it may import the standard library only; neither end
    keeps its own copy of the constants."""
    import sys
    tree = ast.parse((ROOT / "mrd_backend" / "protocol.py").read_text(encoding="utf-8"))
    roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    roots |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}
    for end in ("mrd_backend/worker.py", "mrd_blender_addon/client.py"):
        src = (ROOT / end).read_text(encoding="utf-8")
        assert "PROTOCOL = 1" not in src and 'STOP_FILE = "STOP"' not in src, end


def test_every_relative_import_names_a_module_that_exists():
    """A function-level import only fails when its function runs: after a file moves, a stale `from .old import x`
    is found here instead."""
    modules = _modules()
    stale = []
    for name, (path, is_pkg) in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").split(".")[0] in PACKAGES):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
                else:
                    base = node.module
                if base not in modules:
                    stale.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert stale == []


def test_tests_and_scripts_import_modules_that_exist():
    modules = _modules()
    stale = []
    for path in sorted([*(ROOT / "tests").rglob("*.py"), *(ROOT / "scripts").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            stale += [f"{path.relative_to(ROOT)}:{node.lineno}: {n}" for n in names
                      if n.split(".")[0] in PACKAGES and n not in modules]
    assert stale == []
