"""Grafana provisioning: the data source points at the compose database, and every panel's SQL runs here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"


def _panel_sql() -> list[tuple[str, str]]:
    out = []
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for t in panel.get("targets", []):
                out.append((f"{path.name}: {panel['title']}", t["rawSql"]))
    return out


def _expand_macros(sql: str) -> str:
    """Grafana's PostgreSQL macros, as Grafana expands them, for a 24-hour range."""
    sql = re.sub(
        r"\$__timeGroupAlias\((\w+),\s*'(\d+)([smhd])'\)",
        lambda m: (
            f"date_bin('{m.group(2)} {dict(s='seconds', m='minutes', h='hours', d='days')[m.group(3)]}', "
            f"{m.group(1)}, '2000-01-01') AS time"
        ),
        sql,
    )
    sql = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN now() - interval '24 hours' AND now()", sql)
    assert "$__" not in sql, sql
    return sql


def test_provisioning_files_are_well_formed_and_wired_into_compose():
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/placewatch.yml").read_text())["datasources"][0]
    assert ds["url"] == "db:5432" and ds["jsonData"]["database"] == "placewatch"
    prov = yaml.safe_load((GRAFANA / "provisioning/dashboards/placewatch.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    mounts = " ".join(grafana["volumes"])
    assert "./dashboards/grafana/provisioning:/etc/grafana/provisioning" in mounts
    assert f"./dashboards/grafana/dashboards:{prov['options']['path']}" in mounts
    for path in (GRAFANA / "dashboards").glob("*.json"):
        dash = json.loads(path.read_text())
        assert {p["datasource"]["uid"] for p in dash["panels"]} == {ds["uid"]}


@pytest.mark.parametrize(("where", "sql"), _panel_sql())
def test_every_panel_query_runs_against_the_schema(db, where, sql):
    db.execute("EXPLAIN " + _expand_macros(sql))
