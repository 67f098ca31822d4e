"""placewatch/mqttclient.py leans on paho's private API, so paho is pinned exactly and checked here.

These fail, saying why, when pyproject.toml stops pinning paho-mqtt to one version, when the installed paho is not
that version, or when a private method, attribute or module name mqttclient.py uses is missing from the installed
paho (an override of a renamed method would silently never run). The names are read from mqttclient.py itself
(ast), so a private name added there is checked without touching this file.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import paho.mqtt.client as mqtt

from placewatch import mqttclient

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(mqttclient.__file__)
WHY = "placewatch/mqttclient.py overrides and reads private parts of paho's Client"


def _pin() -> str:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = [d for d in deps if re.match(r"paho-mqtt\b", d)]
    assert len(spec) == 1, f"pyproject.toml must name paho-mqtt once among the dependencies, found {spec}"
    m = re.fullmatch(r"paho-mqtt\s*==\s*([0-9][0-9A-Za-z.]*)", spec[0].split(";")[0].strip())
    assert m, f"pyproject.toml must pin paho-mqtt to one exact version (paho-mqtt==X.Y.Z), not {spec[0]!r}: {WHY}"
    return m.group(1)


def _client_class() -> ast.ClassDef:
    tree = ast.parse(SOURCE.read_text())
    return next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Client")


def _chain(node: ast.Attribute) -> tuple[str, list[str]] | None:
    """('self' or 'super', [attr, attr, ...]) for self._a._b / super()._a, else None."""
    names: list[str] = []
    cur: ast.expr = node
    while isinstance(cur, ast.Attribute):
        names.insert(0, cur.attr)
        cur = cur.value
    if isinstance(cur, ast.Name) and cur.id == "self":
        return "self", names
    if isinstance(cur, ast.Call) and isinstance(cur.func, ast.Name) and cur.func.id == "super":
        return "super", names
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_paho_is_pinned_to_the_installed_version() -> None:
    pinned = _pin()
    installed = importlib.metadata.version("paho-mqtt")
    assert installed == pinned, (
        f"paho-mqtt {installed} is installed but pyproject.toml pins {pinned}: {WHY}, which paho may change in any "
        f"release. Read paho {installed}'s Client against mqttclient.py (and run tests/unit/test_mqttclient_fast.py), "
        "then move the pin; or install the pinned version."
    )


def test_every_private_method_mqttclient_overrides_still_exists_in_paho() -> None:
    cls = _client_class()
    own = {"_deliver_pass"}  # mqttclient's own helper, no override
    ours = [n.name for n in cls.body if isinstance(n, ast.FunctionDef) and _private(n.name) and n.name not in own]
    assert ours, "mqttclient.Client overrides no private method: then the pin and this test can go"
    missing = [name for name in ours if not callable(getattr(mqtt.Client, name, None))]
    assert not missing, (
        f"paho {importlib.metadata.version('paho-mqtt')} has no Client.{', Client.'.join(missing)}: mqttclient.Client "
        "overrides them, and an override of a method paho no longer has never runs (the fast receive path is silently "
        "off, or broken)"
    )


def test_every_private_name_mqttclient_reads_still_exists_in_paho() -> None:
    cls = _client_class()
    init = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__")
    own = {  # what mqttclient.Client sets up itself
        t.attr
        for n in ast.walk(init)
        if isinstance(n, ast.Assign | ast.AugAssign | ast.AnnAssign)
        for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    own |= {n.name for n in cls.body if isinstance(n, ast.FunctionDef)}
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pin-check")
    missing: list[str] = []
    packet_keys: set[str] = set()
    for node in ast.walk(cls):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
            if node.value.attr == "_in_packet" and isinstance(node.slice, ast.Constant):
                packet_keys.add(str(node.slice.value))
        if not isinstance(node, ast.Attribute):
            continue
        found = _chain(node)
        if found is None:
            continue
        base, names = found
        if not _private(names[0]) or (base == "self" and names[0] in own and names[0] not in vars(mqtt.Client)):
            continue
        obj: object = plain
        for i, name in enumerate(names):
            if not hasattr(obj, name):
                missing.append(".".join(["Client", *names[: i + 1]]))
                break
            obj = getattr(obj, name)
    for key in sorted(packet_keys - set(plain._in_packet)):
        missing.append(f"Client._in_packet[{key!r}]")
    module_names = {
        n.attr
        for n in ast.walk(ast.parse(SOURCE.read_text()))
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "mqtt"
    }
    missing += [f"paho.mqtt.client.{name}" for name in sorted(module_names) if not hasattr(mqtt, name)]
    assert not missing, (
        f"paho {importlib.metadata.version('paho-mqtt')} lacks {', '.join(sorted(set(missing)))}, which "
        "placewatch/mqttclient.py uses: the fast receive path would fail on the first message. Read paho's Client "
        "against mqttclient.py before moving the pin."
    )


def test_the_check_sees_the_private_names_mqttclient_uses() -> None:
    """The ast walk above finds what it should (else it would pass by checking nothing)."""
    text = SOURCE.read_text()
    for name in ("_in_packet", "_msgtime_mutex", "_on_message_filtered", "_packet_handle", "_packet_queue"):
        assert f"self.{name}" in text or f"super().{name}" in text
    cls = _client_class()
    seen = {c[1][0] for n in ast.walk(cls) if isinstance(n, ast.Attribute) and (c := _chain(n)) is not None}
    assert {"_in_packet", "_msgtime_mutex", "_on_message_filtered", "_packet_handle", "_packet_queue"} <= seen
