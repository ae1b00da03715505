"""The add-on's import graph (read from the source, no bpy needed): no cycles, `apply` never imports `export`
(what both need lives in bpy_arrays.py), and only `client` reaches into mrd_backend (through client.backend())."""
import ast
from pathlib import Path

ADDON = Path(__file__).resolve().parents[1] / "mrd_blender_addon"
PACKAGE = ADDON.name


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ADDON.rglob("*.py")):
        rel = path.relative_to(ADDON).with_suffix("")
        if "mrd_backend" in rel.parts:   # a bundled copy inside an installed add-on, not the add-on's code
            continue
        parts = [PACKAGE, *rel.parts]
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict) -> set[str]:
    """The add-on modules `name` imports anywhere in its file (module top or inside functions)."""
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[:len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:   # `from . import x` names a module when x is one
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in modules else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in modules and m != name}


def _graph():
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_the_addon_has_no_import_cycle():
    graph = _graph()
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(m):] + [m]))
        if m in done:
            return
        path.append(m)
        for n in sorted(graph[m]):
            visit(n)
        path.pop()
        done.add(m)
    for m in sorted(graph):
        visit(m)
    assert f"{PACKAGE}.bpy_arrays" in graph and f"{PACKAGE}.export.mesh" in graph   # the graph was read


def test_apply_does_not_import_export_and_only_the_client_imports_the_backend():
    graph = _graph()
    for name, deps in graph.items():
        if name.startswith(f"{PACKAGE}.apply"):
            assert not any(d.startswith(f"{PACKAGE}.export") for d in deps), (name, deps)
    for name, path in _modules().items():
        text = path.read_text()
        if name != f"{PACKAGE}.client":
            assert "import mrd_backend" not in text and "from mrd_backend" not in text, name
