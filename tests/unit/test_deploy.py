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


def test_compose_pins_every_image_and_runs_the_tested_timescaledb():
    services = _compose()["services"]
    for name, service in services.items():
        image = service.get("image", "")
        if image.startswith("placewatch:"):
            continue  # built from this repository
        tag = image.rpartition(":")[2]
        assert re.fullmatch(r"\d+\.\d+\.\d+(-[a-z0-9]+)?", tag), f"{name}: {image} is not an exact version"
    # The engine and PostgreSQL major the suite runs on (README, "Running the tests on TimescaleDB").
    assert re.fullmatch(r"timescale/timescaledb(-ha)?:2\.\d+\.\d+-pg15(-all)?", services["db"]["image"])
    command = services["db"]["command"]
    assert "shared_preload_libraries=timescaledb" in command
    env = _compose()["x-placewatch"]["environment"]
    assert env["PLACEWATCH_TIMESCALEDB"] == "on"  # a server without TimescaleDB is refused, never used silently
    readme = (ROOT / "README.md").read_text()
    assert services["db"]["image"].split(":")[1].split("-")[0] in readme  # the README names the tested version


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


def test_cluster_profile_adds_three_nats_nodes_and_a_synchronous_standby():
    compose = _compose()
    services = compose["services"]
    cluster = {name for name, s in services.items() if "cluster" in s.get("profiles", [])}
    assert cluster == {"nats-1", "nats-2", "nats-3", "db-standby", "db-sync"}
    # Without the profile nothing changes: no default service depends on a cluster one.
    for name, s in services.items():
        if name not in cluster:
            assert not set(s.get("depends_on", {})) & cluster, f"{name} needs the cluster profile"
    nats = [services[f"nats-{i}"] for i in (1, 2, 3)]
    assert len({n["image"] for n in nats}) == 1 and nats[0]["image"].startswith("nats:")
    assert sorted(n["environment"]["NATS_NAME"] for n in nats) == ["nats-1", "nats-2", "nats-3"]
    assert len({n["volumes"][1] for n in nats}) == 3  # each node its own JetStream data
    conf = (ROOT / "deploy/nats/nats.conf").read_text()
    for i in (1, 2, 3):
        assert f"nats-route://nats-{i}:6222" in conf
    assert "jetstream" in conf and re.search(r"^mqtt \{", conf, re.M)
    assert services["db-standby"]["image"] == services["db"]["image"] == services["db-sync"]["image"]
    assert "pg_basebackup" in services["db-standby"]["entrypoint"][-1]
    assert any("synchronous_standby_names" in a for a in services["db-sync"]["entrypoint"])
    assert any("010-replication.sh" in v for v in services["db"]["volumes"])
    env = compose["x-placewatch"]["environment"]
    assert "target_session_attrs=read-write" in env["PLACEWATCH_DATABASE_URL"]
    assert env["PLACEWATCH_TRANSPORT"] == "${PLACEWATCH_TRANSPORT:-mqtt}"  # MQTT stays the default
    assert all(f"@nats-{i}:4222" in env["PLACEWATCH_NATS_URL"] for i in (1, 2, 3))
