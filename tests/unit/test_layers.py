"""No import runs back up a layer: read from the source with ast (every import, also those inside functions).

Layers, lowest first: core (pure rules) < store (all SQL) < alerts, ingest, api, dashboards < placewatch (settings,
command line, composition). Checked here:
- core imports only the standard library, numpy, pandas and core (and the pure third-party libraries named in
  CORE_PURE_LIBRARIES, for the modules named there);
- store imports none of alerts, api, ingest, dashboards, placewatch.cli;
- alerts imports nothing from api;
- placewatch.settings imports none of ingest, alerts, api;
- placewatch.runner does not import placewatch.cli (the command line runs the runner, not the other way round);
- SQL only in store/: no SQL statement is handed to execute, executemany or copy outside store/ (a static scan).
"""

from __future__ import annotations

import ast
import re
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


def _source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str) -> Path:
    """A module of this source in a tree of its own, which the checks then read as the project."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    path = tmp_path / module
    path.parent.mkdir(parents=True)
    path.write_text(source)
    return path


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
    path = _source(tmp_path, monkeypatch, module, source)
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
    path = _source(tmp_path, monkeypatch, module, source)
    assert breaks(path) == []


# --- SQL only in store/ ------------------------------------------------------------------------------------------

SQL_CALLS = {"execute", "executemany", "copy"}
SQL_STATEMENT = re.compile(
    r"\s*(SELECT|INSERT|UPDATE|DELETE|MERGE|WITH|SET|RESET|SHOW|LISTEN|UNLISTEN|NOTIFY|COPY|CREATE|ALTER|DROP|TRUNCATE"
    r"|VACUUM|ANALYZE|BEGIN|COMMIT|ROLLBACK|SAVEPOINT|LOCK|DO|CALL|EXPLAIN|GRANT|REVOKE|REFRESH|CLUSTER|REINDEX"
    r"|DISCARD)\b",
    re.IGNORECASE,
)
OUTSIDE_STORE = ("core", "alerts", "api", "ingest", "dashboards", "placewatch", "simulators")
# Files other people were still changing when this check was written, which then still handed SQL to execute
# (issue 15): each is to move its statements into store/ and leave this list.
STILL_MOVING: dict[str, str] = {}


def _text(node: ast.expr | None, constants: dict[str, str]) -> str | None:
    """The statement an argument spells, as far as the source shows it: literals, f-strings (each value as {}),
    concatenations, module-level string constants, psycopg's sql.SQL(...) and its .format(...)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)  # type: ignore[misc]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _text(node.left, constants), _text(node.right, constants)
        return None if left is None else left + (right or "{}")
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    if isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "format":  # sql.SQL("...").format(...)
            return _text(func.value, constants)
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "SQL" and node.args:
            return _text(node.args[0], constants)
    return None


def sql_outside_store(path: Path) -> list[str]:
    """Every SQL statement this file hands to execute, executemany or copy, in words (none for store/)."""
    if _within(_module_name(path), ("store",)):
        return []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    constants = {
        t.id: n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str)
        for t in n.targets
        if isinstance(t, ast.Name)
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
            and node.args
            and (text := _text(node.args[0], constants)) is not None
            and (m := SQL_STATEMENT.match(text))
        ):
            words = " ".join(text.split())[:60]
            found.append(
                f"{path.relative_to(ROOT)}:{node.lineno}: {m.group(1).upper()} outside store/ ({words!r}): "
                "move it into a named function in store/"
            )
    return found


def _outside_store() -> list[Path]:
    return sorted(p for pkg in OUTSIDE_STORE for p in (ROOT / pkg).rglob("*.py") if "__pycache__" not in p.parts)


def test_sql_is_only_in_store() -> None:
    found = [f for p in _outside_store() if str(p.relative_to(ROOT)) not in STILL_MOVING for f in sql_outside_store(p)]
    assert not found, "SQL outside store/:\n" + "\n".join(found)


def test_the_packages_scanned_for_sql_are_there() -> None:
    names = {_module_name(p) for p in _outside_store()}
    assert {"alerts.scheduler", "api.routers.metrics", "placewatch.runner", "ingest.service"} <= names


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("alerts/x.py", "def f(conn):\n    conn.execute('SELECT pg_try_advisory_lock(%s)', (1,))\n", "SELECT"),
        ("alerts/x.py", "def f(conn):\n    conn.execute(f'LISTEN {CHANNEL}')\n", "LISTEN"),
        ("api/routers/x.py", 'def f(c):\n    c.execute(f"SET LOCAL statement_timeout = {MS}")\n', "SET"),
        ("placewatch/x.py", "Q = 'select id from homes'\ndef f(c):\n    return c.execute(Q).fetchall()\n", "SELECT"),
        ("ingest/x.py", "def f(cur):\n    with cur.copy('COPY readings FROM STDIN') as cp:\n        pass\n", "COPY"),
        ("ingest/x.py", "def f(cur):\n    cur.executemany('\\n  INSERT INTO t VALUES (%s)', [])\n", "INSERT"),
        ("dashboards/x.py", "def f(c):\n    c.execute(sql.SQL('LISTEN {}').format(sql.Identifier('x')))\n", "LISTEN"),
        ("alerts/x.py", "def f(c):\n    c.execute('DELETE FROM ' + TABLE)\n", "DELETE"),
    ],
)
def test_sql_outside_store_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str, expected: str
) -> None:
    path = _source(tmp_path, monkeypatch, module, source)
    found = sql_outside_store(path)
    assert len(found) == 1 and f"{expected} outside store/" in found[0], found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("store/x.py", "def f(conn):\n    conn.execute('SELECT 1')\n"),
        ("store/sub/x.py", "def f(conn):\n    conn.execute(f'LISTEN {CHANNEL}')\n"),
        ("alerts/x.py", "from store import db\ndef f(conn):\n    db.listen(conn, 'x')\n"),
        ("alerts/x.py", "def f(pool, job):\n    pool.execute(job)\n    pool.execute('selection done')\n"),
        ("placewatch/x.py", "def f(d):\n    return d.copy()\n"),
    ],
)
def test_store_calls_and_other_executes_are_fine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str
) -> None:
    path = _source(tmp_path, monkeypatch, module, source)
    assert sql_outside_store(path) == []
