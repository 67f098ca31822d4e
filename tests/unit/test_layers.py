"""No import runs back up a layer: read from the source with ast (every import, also those inside functions).

Layers, lowest first: core (pure rules) < store (all SQL) < alerts, ingest, api, dashboards < placewatch (settings,
command line, composition). Checked here:
- core imports only the standard library, numpy, pandas and core (and the pure third-party libraries named in
  CORE_PURE_LIBRARIES, for the modules named there);
- store imports none of alerts, api, ingest, dashboards, placewatch.cli;
- alerts imports nothing from api;
- placewatch.settings imports none of ingest, alerts, api;
- placewatch.runner does not import placewatch.cli (the command line runs the runner, not the other way round).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Pure computation or data with no I/O, used by one core module each; a new one is a decision, so it is named here.
CORE_PURE_LIBRARIES: dict[str, set[str]] = {
    "geographiclib": {"core.season"},  # geodesic distances between stations and routes
    "holidays": {"core.workdays"},  # the UK's bank holidays, for working days in Awaab's Law deadlines
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import in the file, relative ones made absolute."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            out.append((node.lineno, name))
            # `from placewatch import cli` imports placewatch.cli
            out += [(node.lineno, f"{name}.{a.name}") for a in node.names if a.name != "*"]
    return out


def _within(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def breaks(path: Path) -> list[str]:
    """Every import in this file that runs back up a layer, in words."""
    module = _module_name(path)
    where = f"{path.relative_to(ROOT)}"
    found: list[str] = []
    lines: set[int] = set()
    for line, name in imports(path):
        if line in lines:  # one break per import statement (`from alerts.health import X`: alerts.health)
            continue
        before = len(found)
        top = name.split(".")[0]
        if _within(module, ("core",)):
            allowed = top in sys.stdlib_module_names or top in ("numpy", "pandas", "core", "__future__")
            if not allowed and module not in CORE_PURE_LIBRARIES.get(top, set()):
                found.append(f"{where}:{line}: core imports {name}: core is pure (standard library, numpy, pandas)")
        elif _within(module, ("store",)):
            if _within(name, ("alerts", "api", "ingest", "dashboards", "placewatch.cli")):
                found.append(f"{where}:{line}: store imports {name}, a layer above it")
        elif _within(module, ("alerts",)):
            if _within(name, ("api",)):
                found.append(f"{where}:{line}: alerts imports {name}: the scheduled jobs must not depend on the API")
        elif module == "placewatch.settings":
            if _within(name, ("ingest", "alerts", "api")):
                found.append(f"{where}:{line}: placewatch.settings imports {name}; settings sit below every service")
        elif module == "placewatch.runner":
            if _within(name, ("placewatch.cli",)):
                found.append(f"{where}:{line}: placewatch.runner imports {name}, which imports the runner (a cycle)")
        if len(found) > before:
            lines.add(line)
    return found


def _files() -> list[Path]:
    return sorted(
        p
        for pkg in ("core", "store", "alerts", "placewatch")
        for p in (ROOT / pkg).rglob("*.py")
        if "__pycache__" not in p.parts
    )


def test_no_import_runs_back_up_a_layer() -> None:
    found = [b for path in _files() for b in breaks(path)]
    assert not found, "imports that run back up a layer:\n" + "\n".join(found)


def test_the_packages_checked_are_there() -> None:
    names = {_module_name(p) for p in _files()}
    assert {"core.health", "store.health", "alerts.health", "placewatch.settings", "placewatch.runner"} <= names


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("core/x.py", "import psycopg\n", "core imports psycopg"),
        ("core/x.py", "def f():\n    from store import db\n", "core imports store"),
        ("store/x.py", "from alerts.health import DeviceHealthEvaluator\n", "store imports alerts.health"),
        ("store/x.py", "from placewatch import cli\n", "store imports placewatch.cli"),
        ("alerts/x.py", "from api.routers.gritting import ForecastLoad\n", "alerts imports api.routers.gritting"),
        ("alerts/sub/x.py", "from ...api import app\n", "alerts imports api"),
        ("placewatch/settings.py", "from ingest.decoders.registry import FORMATS\n", "settings imports ingest"),
        ("placewatch/runner.py", "def f():\n    from placewatch.cli import build_decoders\n", "a cycle"),
    ],
)
def test_a_break_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str, expected: str
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    found = breaks(path)
    assert len(found) == 1 and expected in found[0], found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("core/x.py", "import numpy as np\nfrom datetime import UTC\nfrom core.model import Reading\n"),
        ("store/x.py", "import psycopg\nfrom core.health import Problem\nfrom placewatch.settings import Settings\n"),
        ("alerts/x.py", "from store import health\nfrom core.health import check\n"),
        ("placewatch/settings.py", "from core.formats import FORMATS\nfrom placewatch.mqttclient import probe\n"),
    ],
)
def test_imports_down_the_layers_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str
) -> None:
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    assert breaks(path) == []
