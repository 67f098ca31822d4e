"""docker-compose.yml cannot run here (no Docker engine): check that it agrees with the CLI and settings."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from placewatch.cli import parser
from placewatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_production_services():
    services = _compose()["services"]
    assert {"db", "mqtt", "migrate", "ingest", "api", "alerts"} <= set(services)
    assert services["db"]["image"].startswith("timescale/timescaledb")
    assert services["mqtt"]["image"].startswith("eclipse-mosquitto")
    for name in ("db", "mqtt", "ingest", "api", "alerts"):
        assert "healthcheck" in services[name], f"{name} has no health check"


def test_compose_commands_are_placewatch_subcommands():
    services = _compose()["services"]
    p = parser()
    for name in ("migrate", "ingest", "api", "alerts"):
        cmd = services[name]["command"]
        assert cmd[0] == "placewatch"
        args = p.parse_args(cmd[1:])
        assert args.command == cmd[1]


def test_compose_environment_names_real_settings():
    fields = {f"PLACEWATCH_{n.upper()}" for n in Settings.model_fields} | {"PLACEWATCH_LOG_FORMAT"}
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\b(PLACEWATCH_[A-Z_]+)\b", text))
    assert used, "compose sets no Placewatch settings"
    assert used <= fields, f"unknown settings in docker-compose.yml: {used - fields}"


def test_ingest_runs_two_replicas_on_a_shared_subscription_after_migration():
    ingest = _compose()["services"]["ingest"]
    assert ingest["deploy"]["replicas"] == 2
    assert ingest["environment"]["PLACEWATCH_MQTT_SHARED_GROUP"]
    assert ingest["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert _compose()["services"]["migrate"]["restart"] == "no"


def test_mosquitto_config_requires_passwords_and_offers_tls():
    conf = (ROOT / "deploy/mosquitto/mosquitto.conf").read_text()
    lines = [ln.split("#")[0].strip() for ln in conf.splitlines()]
    assert "allow_anonymous false" in lines
    assert any(ln.startswith("password_file ") for ln in lines)
    assert "listener 8883" in lines and any(ln.startswith("certfile ") for ln in lines)
    assert "persistence true" in lines


def test_every_setting_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = [f"PLACEWATCH_{n.upper()}" for n in Settings.model_fields if f"PLACEWATCH_{n.upper()}" not in readme]
    assert not missing, f"settings missing from README.md: {missing}"
