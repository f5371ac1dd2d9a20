"""Tests of the package as a whole: every module reachable after ``import lensbox``, and its shape.

The shape is read from the source files (the AST), so an import hidden inside a function counts
like any other. The layers are those of ``lensbox/__init__.py``'s docstring: a package may import
from a package of lower rank and, inside one package, modules may import each other as long as no
cycle forms. Of the case studies, boosting stands above complexity because the book's story does:
a boosted ensemble is a sum of the tree smoothers of the complexity study.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import lensbox


def test_every_submodule_resolves_after_a_bare_import():
    """``lensbox.X.Y`` works for every public module file of the package, at any depth, with only
    ``import lensbox`` run, in a fresh interpreter (no other test has imported them)."""
    import pkgutil
    import subprocess
    import sys

    files = sorted(
        m.name
        for m in pkgutil.walk_packages(lensbox.__path__, prefix="lensbox.")
        if not any(part.startswith("_") for part in m.name.split("."))
    )
    code = (
        "import functools, lensbox\n"
        f"for name in {files!r}:\n"
        "    parts = name.split('.')[1:]\n"
        "    module = functools.reduce(getattr, parts, lensbox)\n"
        "    assert module.__name__ == name, name\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert {"lensbox.engine.smoother", "lensbox.data.catalogue"} <= set(files)


ROOT = Path(lensbox.__file__).parent
RANK = {
    "lensbox.errors": 0,
    "lensbox._lazy": 0,
    "lensbox._files": 0,
    "lensbox.engine": 1,
    "lensbox.runtime": 2,
    "lensbox.data": 3,
    "lensbox.complexity": 4,
    "lensbox.connectivity": 4,
    "lensbox.boosting": 5,
    "lensbox.experiments": 6,
    "lensbox": 9,  # the package's own __init__: the top-level names
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _target(name: str) -> str:
    """The module file an imported dotted name lives in (``lensbox.engine.models.mlp`` ->
    ``lensbox.engine.models``)."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(module: str) -> list[tuple[str, int, bool, list[str]]]:
    """``(imported module, line, at module level, names imported from it)`` for each lensbox
    import in ``module``'s source."""
    tree = ast.parse(MODULES[module].read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "lensbox":
                    found.append(
                        (_target(alias.name), node.lineno, id(node) in top, [])
                    )
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] != "lensbox":
                continue
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                target = full if full in MODULES else _target(node.module)
                names = [] if full in MODULES else [alias.name]
                found.append((target, node.lineno, id(node) in top, names))
    return found


def _private_attributes(module: str) -> list[str]:
    """``alias._name`` where ``alias`` is another lensbox module imported here."""
    tree = ast.parse(MODULES[module].read_text())
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "lensbox"
        ):
            for a in node.names:
                if f"{node.module}.{a.name}" in MODULES:
                    aliases.add(a.asname or a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("lensbox") and a.asname:
                    aliases.add(a.asname)
    return [
        f"{module}:{node.lineno}: {node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in aliases
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
    ]


def test_every_module_belongs_to_a_layer():
    assert {_layer(m) for m in MODULES} <= set(RANK), set(map(_layer, MODULES)) - set(
        RANK
    )


def test_imports_go_only_downward_and_never_from_inside_a_function():
    wrong = []
    for module in MODULES:
        for target, line, at_top, _ in _imports(module):
            where = f"{module}:{line} imports {target}"
            if not at_top and target != module:
                wrong.append(f"{where} inside a function or class")
            src, dst = _layer(module), _layer(target)
            if src != dst and RANK[dst] >= RANK[src] and target != "lensbox._lazy":
                wrong.append(f"{where}: layer {dst} is not below {src}")
    assert wrong == []


def test_no_import_cycle():
    graph = {
        m: {t for t, *_ in _imports(m) if t != m and not m.startswith(t + ".")}
        for m in MODULES
    }
    # a package's __init__ importing its own modules is not a cycle through them
    state: dict[str, int] = {}
    cycles = []

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for module in MODULES:
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_no_private_name_crosses_a_module():
    wrong = [
        f"{module}:{line}: {name} from {target}"
        for module in MODULES
        for target, line, _, names in _imports(module)
        for name in names
        if name.startswith("_") and target != module
    ]
    wrong += [bad for module in MODULES for bad in _private_attributes(module)]
    assert wrong == []


def test_the_rules_see_every_module():
    """The module files the rules read are the ones Python imports, and more than a handful."""
    for module, path in MODULES.items():
        spec = importlib.util.find_spec(module)
        assert spec is not None and Path(spec.origin) == path, module
    assert {
        "lensbox.engine.smoother",
        "lensbox.boosting.trees",
        "lensbox.runtime.claims",
    } <= set(MODULES)


def test_a_module_with_all_lists_every_public_function_and_class_it_defines():
    """The API page's autosummary tables list a module's public functions and classes, but its
    autodoc documents only the names in ``__all__`` when the module has one: a public function
    left out of ``__all__`` is a link with no target, which fails the strict website build."""
    import importlib
    import inspect
    import pkgutil

    missing = []
    for info in pkgutil.walk_packages(lensbox.__path__, prefix="lensbox."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        listed = getattr(module, "__all__", None)
        if listed is None:
            continue
        for name, obj in vars(module).items():
            if (
                not name.startswith("_")
                and (inspect.isfunction(obj) or inspect.isclass(obj))
                and obj.__module__ == info.name
                and name not in listed
            ):
                missing.append(f"{info.name}.{name}")
    assert not missing, missing
