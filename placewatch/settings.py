"""All configuration in one pydantic-settings class, read from PLACEWATCH_* environment variables."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core.formats import FORMATS
from placewatch.mqttclient import BrokerAddress

UNSAFE_SECRETS = frozenset({"", "change-me", "changeme", "secret", "placewatch", "development-only-secret"})
DEV_SECRET = "development-only-secret"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    """Placewatch settings. Every field is the env var PLACEWATCH_<FIELD NAME IN CAPITALS>."""

    model_config = SettingsConfigDict(env_prefix="PLACEWATCH_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    data_dir: Path = Path("var")

    # Database: a PostgreSQL URL; empty means the embedded PostgreSQL of `placewatch run` (pgserver).
    database_url: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PLACEWATCH_DATABASE_URL", "DATABASE_URL")
    )
    database_pool_max: int = Field(default=10, ge=1, le=200)
    timescaledb: Literal["auto", "on", "off"] = "auto"
    retention_days: int = Field(default=0, ge=0, description="drop raw readings older than this; 0 keeps all")
    dead_letter_retention_days: int = Field(
        default=90, ge=0, description="drop dead letters received longer ago than this; 0 keeps all"
    )

    # MQTT
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    mqtt_protocol: Literal["5", "3.1.1"] = "5"
    mqtt_client_id: str = Field(default_factory=lambda: f"placewatch-ingest-{socket.gethostname()}")
    mqtt_shared_group: str = Field(
        default="", description="e.g. 'ingest': subscribe as $share/ingest/... to split load"
    )
    mqtt_ca_file: str | None = None
    mqtt_keepalive: int = Field(default=30, ge=5, le=3600)
    topic_prefix: str = "placewatch/v1"
    # Transport: MQTT (the default) or a JetStream stream fed by a NATS cluster's MQTT listeners (ingest/jetstream.py)
    transport: Literal["mqtt", "jetstream"] = "mqtt"
    nats_url: str = Field(default="nats://127.0.0.1:4222", description="comma-separated NATS servers")
    nats_stream: str = Field(default="PLACEWATCH", pattern=r"^[A-Za-z0-9_-]+$")
    nats_consumer: str = Field(default="placewatch-ingest", pattern=r"^[A-Za-z0-9_-]+$")
    nats_replicas: int = Field(default=3, ge=1, le=5, description="replicas of the stream ingest creates")
    nats_max_age_hours: float = Field(default=168.0, gt=0, description="unacknowledged messages kept this long")
    nats_ack_wait_s: float = Field(default=30.0, ge=1, le=3600, description="redelivery after a worker dies")
    nats_max_ack_pending: int = Field(default=100_000, ge=1, description="unacknowledged messages, all workers")
    formats: str = "native"
    format_options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    # Ingest
    ingest_batch_rows: int = Field(default=50_000, ge=1, le=1_000_000)
    ingest_batch_ms: int = Field(default=200, ge=1, le=600_000)
    ingest_max_inflight: int = Field(default=20_000, ge=1, le=65_535)
    ingest_queue_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    auto_register: bool = False
    auto_register_topics: str = Field(default="", description="comma-separated topic filters allowed to auto-register")
    max_future_minutes: int = Field(default=10, ge=0)
    earliest_reading: datetime = datetime(2000, 1, 1, tzinfo=UTC)
    stale_after_factor: float = Field(default=3.0, gt=0)
    default_interval_seconds: int = Field(default=900, ge=1)
    stats_seconds: float = Field(default=10.0, gt=0, description="how often ingest logs its counters")
    metrics_port: int = Field(default=0, ge=0, le=65535, description="ingest serves /metrics here; 0: off")

    # API
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, ge=0, le=65535)
    secret_key: SecretStr = SecretStr(DEV_SECRET)
    token_minutes: int = Field(default=12 * 60, ge=1)
    login_attempts_per_minute: int = Field(default=10, ge=0, description="failed logins per address and per user")

    # Alerts
    alerts_interval_minutes: int = Field(default=10, ge=1)
    damp_interval_minutes: int = Field(default=60, ge=1)
    damp_workers: int = Field(default=1, ge=1, le=64)
    local_zone: str = "Europe/London"
    gritting_policy_file: Path | None = None
    treated_width_m: float = Field(
        default=7.3, gt=0, le=50, description="season report: the width salt is spread over when no tonnes are recorded"
    )

    # Notifications (alerts/notify.py): who gets what is each user's email, role and scope, plus the rules file
    notifications_file: Path | None = Field(default=None, description="JSON array of routing rules")
    smtp_host: str | None = Field(default=None, description="mail server; empty means email is not sent")
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Placewatch <placewatch@localhost>"
    smtp_starttls: bool = True
    smtp_ssl: bool = Field(default=False, description="TLS from the first byte (port 465); wins over STARTTLS")
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=300)
    notify_max_attempts: int = Field(default=6, ge=1, le=50)

    # Road weather forecasts fetched from providers (alerts/forecast_fetch.py); empty provider: off
    forecast_provider: Literal["", "open-meteo", "met-office"] = ""
    forecast_interval_minutes: int = Field(default=60, ge=5, le=24 * 60)
    forecast_hours: int = Field(default=36, ge=6, le=168, description="how far ahead each fetch covers")
    forecast_max_age_hours: float | None = Field(
        default=None, gt=0, le=168, description="a forecast older than this is not used; default: the policy's"
    )
    forecast_timeout_s: float = Field(default=20.0, gt=0, le=300)
    forecast_retries: int = Field(default=3, ge=1, le=10, description="attempts per request, with backoff")
    open_meteo_url: str = "https://api.open-meteo.com/v1/forecast"
    met_office_url: str = "https://data.hub.api.metoffice.gov.uk/sitespecific/v0/point/hourly"
    met_office_api_key: SecretStr | None = None
    road_offset_min_hours: int = Field(
        default=10, ge=1, description="hourly means a road-minus-air cell (local hour, cloud) needs to be used"
    )

    # The map (dashboards/static/map.js): tiles from a URL template with {z}/{x}/{y} (and {s}); empty: no tiles
    map_tile_url: str = Field(default="https://tile.openstreetmap.org/{z}/{x}/{y}.png", max_length=2000)
    map_attribution: str = Field(
        default='&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        max_length=2000,
    )
    map_max_zoom: int = Field(default=19, ge=1, le=24)
    registry_far_km: float = Field(default=100.0, gt=0, description="warn about features this far from the rest")

    # What people read: the council's own name, contacts, policy and licence
    council_name: str = Field(default="the council", max_length=200)
    council_phone: str = Field(default="", max_length=100, description="the number tenants call about repairs")
    council_email: str = Field(default="", max_length=200, description="the address tenants write to")
    repair_url: str = Field(default="", max_length=2000, description="the council's report-a-repair page")
    winter_policy_name: str = Field(
        default="the council's winter service policy", min_length=1, max_length=200, description="cited by reasons"
    )
    open_data_licence: str = Field(default="Open Government Licence v3.0", min_length=1, max_length=200)
    open_data_licence_url: str = Field(
        default="https://www.nationalarchives.gov.uk/doc/open-government-licence/version/3/", max_length=2000
    )

    # `placewatch run`
    simulate: bool = True
    simulate_speed: float = Field(default=1.0, gt=0)
    registry_file: Path | None = None

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, v: str) -> str:
        BrokerAddress.parse(v)
        return v

    @field_validator("map_tile_url", "open_meteo_url", "met_office_url")
    @classmethod
    def _url_or_empty(cls, v: str, info: Any) -> str:
        may_be_empty = info.field_name == "map_tile_url"
        if (v or not may_be_empty) and not v.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or http://) address" + (", or empty" if may_be_empty else ""))
        return v

    @field_validator("met_office_api_key")
    @classmethod
    def _empty_key_is_none(cls, v: SecretStr | None) -> SecretStr | None:
        return None if v is None or not v.get_secret_value().strip() else v

    @model_validator(mode="after")
    def _met_office_needs_a_key(self) -> Settings:
        if self.forecast_provider == "met-office" and self.met_office_api_key is None:
            raise ValueError("PLACEWATCH_MET_OFFICE_API_KEY is needed when PLACEWATCH_FORECAST_PROVIDER is met-office")
        return self

    @field_validator("repair_url", "open_data_licence_url")
    @classmethod
    def _web_address(cls, v: str) -> str:
        if v and not v.startswith(("https://", "http://")):
            raise ValueError("must be an https:// (or http://) address, or empty")
        return v

    @field_validator("nats_url")
    @classmethod
    def _nats_url(cls, v: str) -> str:
        urls = [u.strip() for u in v.split(",") if u.strip()]
        bad = [u for u in urls if not u.startswith(("nats://", "tls://"))]
        if not urls or bad:
            raise ValueError("must be nats:// or tls:// URLs, separated by commas")
        return v

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: SecretStr | None) -> SecretStr | None:
        if v is None or not v.get_secret_value().strip():
            return None
        text = v.get_secret_value()
        if not text.startswith(("postgresql://", "postgres://")) and "=" not in text:
            raise ValueError("must be a postgresql:// URL or a libpq connection string")
        return v

    @field_validator("format_options", mode="before")
    @classmethod
    def _format_options(cls, v: Any) -> Any:
        if isinstance(v, str):
            return json.loads(v) if v.strip() else {}
        return v

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: str) -> str:
        known = set(FORMATS)
        names = [n.strip() for n in v.split(",") if n.strip()]
        bad = [n for n in names if n not in known]
        if bad:
            raise ValueError(f"unknown format(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return ",".join(names)

    def decoder_config(self) -> dict[str, dict[str, Any]]:
        """The format configuration ingest builds its decoders from."""
        unused = set(self.format_options) - set(self.format_list)
        if unused:
            raise ValueError(f"options for format(s) not in PLACEWATCH_FORMATS: {', '.join(sorted(unused))}")
        config = {name: dict(self.format_options.get(name, {})) for name in self.format_list}
        if "native" in config:
            config["native"].setdefault("prefix", self.topic_prefix)
        return config

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> Settings:
        if self.environment == "production" and self.secret_key.get_secret_value() in UNSAFE_SECRETS:
            raise ValueError("PLACEWATCH_SECRET_KEY must be set to a long random value in production")
        if self.environment == "production" and len(self.secret_key.get_secret_value()) < 32:
            raise ValueError("PLACEWATCH_SECRET_KEY must be at least 32 characters in production")
        return self

    @property
    def format_list(self) -> list[str]:
        """The enabled device formats, native first when enabled."""
        names = [n for n in self.formats.split(",") if n]
        return [*(["native"] if "native" in names else []), *[n for n in names if n != "native"]]

    def dsn(self) -> str:
        """The database connection string; raises if none is configured."""
        if self.database_url is None:
            raise RuntimeError("no database configured (PLACEWATCH_DATABASE_URL)")
        return self.database_url.get_secret_value()


class SettingsError(Exception):
    """A setting is wrong; the message names the environment variable."""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment (and overrides), turning validation errors into SettingsError."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = err.get("loc") or ()
            msg = str(err.get("msg", "")).removeprefix("Value error, ")
            lines.append(f"PLACEWATCH_{str(loc[0]).upper()}: {msg}" if loc else msg)
        raise SettingsError("bad setting: " + "; ".join(lines)) from None
