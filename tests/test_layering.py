"""The one direction of imports (DESIGN.md, "Layout and dependency rule"), checked on the source.

``hw_models`` is the bottom layer and imports none of the others; ``converter`` and ``emulator``
sit beside each other on top of it and import neither each other nor the ``neuroemu`` facade;
only ``neuroemu`` sees both.  Every import statement counts, including the lazy ones inside
functions, relative imports and ``importlib.import_module("...")`` with a literal name: the
rule is about what a module can reach, not when.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hw_models", "converter", "emulator", "neuroemu")
#: package → the packages of this repository it may import (besides itself)
ALLOWED = {
    "hw_models": set(),
    "converter": {"hw_models"},
    "emulator": {"hw_models"},
    "neuroemu": {"hw_models", "converter", "emulator"},
}


def imported_modules(source: str, package: str, module_path: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every import in ``source`` (a module of ``package``
    at ``module_path``, relative to the repository root)."""
    out = []
    parts = list(module_path.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    for node in ast.walk(ast.parse(source, filename=str(module_path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                base = parts[:len(parts) - node.level] if module_path.name != "__init__.py" \
                    else parts[:len(parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            out.append((node.lineno, name))
        elif (isinstance(node, ast.Call) and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
              and ((isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                   or (isinstance(node.func, ast.Name)
                       and node.func.id in ("import_module", "__import__")))):
            out.append((node.lineno, node.args[0].value))
    return out


def violations(package: str, root: Path = ROOT) -> list[str]:
    """``path:line imports name`` for every import of a repository package ``package`` may not
    use."""
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        rel = path.relative_to(root)
        for line, name in imported_modules(path.read_text(encoding="utf-8"), package, rel):
            top = name.split(".")[0]
            if top in PACKAGES and top != package and top not in ALLOWED[package]:
                bad.append(f"{rel}:{line} imports {name}")
    return bad


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_flow_one_way(package):
    assert violations(package) == [], (
        f"{package} may import only {sorted(ALLOWED[package]) or 'none of the other packages'} "
        f"(DESIGN.md, 'Layout and dependency rule')")


@pytest.mark.parametrize("snippet", [
    "import converter\n",
    "from converter.graph import Graph\n",
    "def f():\n    from converter import convert\n",
    "def f():\n    import neuroemu.datasets\n",
    "import importlib\nm = importlib.import_module('converter.convert')\n",
    "from ..converter import graph\n",
])
def test_checker_catches_emulator_importing_converter(tmp_path, snippet):
    pkg = tmp_path / "emulator"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ok.py").write_text("import numpy as np\nfrom hw_models.network import CoreNetwork\n"
                               "from .ok import np as _np\n")
    (pkg / "sneaky.py").write_text(snippet)
    found = violations("emulator", tmp_path)
    assert len(found) == 1 and found[0].startswith(str(Path("emulator", "sneaky.py")))


def test_relative_imports_resolve_inside_the_package():
    mods = imported_modules("from . import a\nfrom .b import c\nfrom .. import d\n",
                            "emulator", Path("emulator", "x.py"))
    assert [m for _, m in mods] == ["emulator", "emulator.b", ""]
    mods = imported_modules("from .b import c\n", "emulator", Path("emulator", "__init__.py"))
    assert [m for _, m in mods] == ["emulator.b"]
