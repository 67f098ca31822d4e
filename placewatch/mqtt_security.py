"""Per-device MQTT credentials and ACLs for Mosquitto, generated from the registry: `placewatch mqtt acl`.

Who may do what on the broker:

- a device in Placewatch's own format writes only its own topics, {prefix}/devices/{id}/readings and
  /status (its MQTT will included); a Tasmota device only its own tele/{id}/+ and stat/{id}/+ (and
  reads its cmnd/{id}/+). Its username is its device id where Mosquitto can take it (see username_for);
- devices behind a gateway (The Things Stack, ChirpStack, Zigbee2MQTT) and SenML publishers do not log
  in themselves: their gateway does, as `gateway-<format>`, writing that format's topics. The decoders
  refuse a message whose topic and payload name different devices; a SenML pack names its devices in the
  payload, so a SenML publisher is trusted like a gateway;
- placewatch-ingest reads every device topic, placewatch-alerts reads and writes {prefix}/alerts/#,
  placewatch-api only connects (the health check). All three read $SYS/# (broker health).

Passwords are random (32 characters), stored as mosquitto_passwd-compatible PBKDF2-SHA512 hashes, and
shown once, when made. Running again keeps every existing account's hash (unless --rotate), adds the
new devices and rewrites the ACL.
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import hmac
import io
import logging
import os
import re
import secrets
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from placewatch.settings import Settings

log = logging.getLogger("placewatch.mqtt_security")

ITERATIONS = 101  # mosquitto_passwd's default; the passwords are 192 random bits, so no stretching is needed
SALT_BYTES = 12  # as mosquitto_passwd
SERVICES = ("placewatch-ingest", "placewatch-alerts", "placewatch-api")
GATEWAY_FORMATS = ("tts", "chirpstack", "zigbee2mqtt", "senml")
DEVICE_FORMATS = ("native", "tasmota")
RESERVED_PREFIXES = ("placewatch-", "gateway-")
SYS_TOPICS = "$SYS/#"
_UNSAFE_USERNAME = re.compile(r"[\x00-\x1f\x7f:]")

Role = Literal["service", "gateway", "device"]


@dataclass(frozen=True, slots=True)
class Account:
    """One MQTT login and what it may do: (access, topic filter) pairs, access being read, write or readwrite."""

    username: str
    role: Role
    rules: tuple[tuple[str, str], ...]
    device_id: str | None = None
    format: str | None = None


@dataclass
class Plan:
    """The accounts for a registry, and the devices that could not have one (with why)."""

    accounts: list[Account] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    via_gateway: dict[str, int] = field(default_factory=dict)  # format -> devices covered by its gateway


# --- hashes ------------------------------------------------------------------------------------


def mosquitto_hash(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """`$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>`, as mosquitto_passwd writes (Mosquitto 2.x)."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def check_password(password: str, hashed: str) -> bool:
    """True when the password matches a `$7$` hash."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations, salt, want = int(parts[2]), base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(want))
    return hmac.compare_digest(got, want)


# --- names and topics --------------------------------------------------------------------------


def topic_problem(device_id: str) -> str | None:
    """Why a device id cannot be written into its topics (and so into an ACL), or None."""
    if not device_id:
        return "empty id"
    if "+" in device_id or "#" in device_id:
        return "'+' and '#' are MQTT wildcards: no topic may contain them"
    if "\x00" in device_id or "\n" in device_id or "\r" in device_id:
        return "NUL, CR and LF cannot appear in a topic or an ACL line"
    return None


def username_for(device_id: str) -> str:
    """The device's MQTT username: its id when Mosquitto can take it as one, else a stable stand-in.

    Mosquitto's password file splits each line at the first ':' (mosquitto_passwd refuses ':' too), trims
    leading and trailing blanks, and skips lines starting with '#'; '/' and inner spaces are fine. An id
    with ':', control characters, blanks at either end or a leading '#', or that starts like our own
    accounts (placewatch-, gateway-), becomes `<id with those characters as '_'>~<8 hex of its SHA-256>`.
    """
    if (
        not _UNSAFE_USERNAME.search(device_id)
        and device_id == device_id.strip()
        and not device_id.startswith("#")
        and not device_id.startswith(RESERVED_PREFIXES)
    ):
        return device_id
    plain = _UNSAFE_USERNAME.sub("_", device_id.strip()).lstrip("#") or "device"
    return f"{plain[:80]}~{hashlib.sha256(device_id.encode()).hexdigest()[:8]}"


def format_topics(settings: Settings, formats: Iterable[str]) -> dict[str, list[str]]:
    """The topic filters ingest subscribes for each format, with the configured options."""
    from ingest.decoders.registry import FORMATS, build_decoders

    wanted = [f for f in dict.fromkeys(["native", *formats]) if f in FORMATS]
    config = {f: dict(settings.format_options.get(f, {})) for f in wanted}
    config["native"].setdefault("prefix", settings.topic_prefix)
    return {d.name: list(d.subscriptions()) for d in build_decoders(config)}


def plan_accounts(devices: Iterable[tuple[str, str | None]], settings: Settings) -> Plan:
    """Accounts for the services, the gateways in use and every device that logs in itself."""
    from ingest.decoders.registry import FORMATS

    devices = sorted(devices)
    in_use = {f for _, f in devices if f in FORMATS} | set(settings.format_list)
    topics = format_topics(settings, sorted(in_use))
    prefix = settings.topic_prefix.rstrip("/")
    tele = str(settings.format_options.get("tasmota", {}).get("prefix", "tele")).strip().rstrip("/")
    plan = Plan()
    device_topics = [t for name in topics for t in topics[name]]
    plan.accounts += [
        Account("placewatch-ingest", "service", (*(("read", t) for t in device_topics), ("read", SYS_TOPICS))),
        Account("placewatch-alerts", "service", (("readwrite", f"{prefix}/alerts/#"), ("read", SYS_TOPICS))),
        Account("placewatch-api", "service", (("read", SYS_TOPICS),)),
    ]
    for fmt in GATEWAY_FORMATS:
        if fmt in topics:
            access = "readwrite" if fmt == "zigbee2mqtt" else "write"  # Zigbee2MQTT also reads its /set topics
            plan.accounts.append(
                Account(f"gateway-{fmt}", "gateway", tuple((access, t) for t in topics[fmt]), format=fmt)
            )
    for device_id, registered in devices:
        fmt = registered or "native"
        if fmt in GATEWAY_FORMATS:
            plan.via_gateway[fmt] = plan.via_gateway.get(fmt, 0) + 1
            continue
        if fmt not in DEVICE_FORMATS:
            plan.skipped.append((device_id, f"unknown format {fmt!r}"))
            continue
        problem = topic_problem(device_id)
        if problem is not None:
            plan.skipped.append((device_id, problem))
            continue
        if fmt == "tasmota":
            rules: tuple[tuple[str, str], ...] = (
                ("write", f"{tele}/{device_id}/+"),
                ("write", f"stat/{device_id}/+"),
                ("read", f"cmnd/{device_id}/+"),
            )
        else:
            rules = (
                ("write", f"{prefix}/devices/{device_id}/readings"),
                ("write", f"{prefix}/devices/{device_id}/status"),
            )
        plan.accounts.append(Account(username_for(device_id), "device", rules, device_id=device_id, format=fmt))
    seen: dict[str, Account] = {}
    for a in plan.accounts:
        if a.username in seen:
            raise ValueError(f"two accounts would share the username {a.username!r}: {seen[a.username]} and {a}")
        seen[a.username] = a
    return plan


# --- files -------------------------------------------------------------------------------------


def render_acl(accounts: Sequence[Account], *, generated_at: datetime) -> str:
    """A Mosquitto acl_file: no rule for anonymous or unlisted users, one `user` block per account."""
    out = [
        "# Mosquitto ACL generated by `placewatch mqtt acl` from the registry at "
        + generated_at.astimezone(UTC).isoformat(timespec="seconds"),
        "# Do not edit: run the command again. Topics are literal (device ids may hold '/', ':' and spaces).",
        "# No rules before the first `user` line: anonymous and unlisted users may do nothing.",
        "",
    ]
    for a in accounts:
        what = a.role if a.device_id is None else f"device {a.device_id!r} ({a.format})"
        out.append(f"# {what}")
        out.append(f"user {a.username}")
        out.extend(f"topic {access} {topic}" for access, topic in a.rules)
        out.append("")
    return "\n".join(out)


def read_password_file(path: Path) -> dict[str, str]:
    """username -> hash from a Mosquitto password file (missing file: empty)."""
    if not path.exists():
        return {}
    entries: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if sep:
            entries[user] = hashed.strip()
    return entries


def render_password_file(entries: Mapping[str, str]) -> str:
    """username:hash lines."""
    return "".join(f"{user}:{hashed}\n" for user, hashed in entries.items())


def write_private(path: Path, text: str, *, mode: int = 0o600) -> None:
    """Replace a file atomically, readable only by its owner (chown it to Mosquitto's user)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class Credentials:
    """The password file to write and the passwords made this time (shown once)."""

    hashes: dict[str, str]
    new: list[tuple[Account, str]]
    kept_unknown: list[str]


def credentials(
    accounts: Sequence[Account],
    existing: Mapping[str, str],
    *,
    rotate: set[str] | None = None,
    prune: bool = False,
) -> Credentials:
    """Keep each account's existing hash, make passwords for new accounts and those rotated.

    rotate: None rotates nothing, an empty set everything, else those usernames or device ids.
    Accounts in the old file that the registry no longer explains are kept unless prune.
    """
    hashes: dict[str, str] = {}
    new: list[tuple[Account, str]] = []
    for a in accounts:
        rotated = rotate is not None and (not rotate or a.username in rotate or (a.device_id or "") in rotate)
        if a.username in existing and not rotated:
            hashes[a.username] = existing[a.username]
            continue
        password = secrets.token_urlsafe(24)
        hashes[a.username] = mosquitto_hash(password)
        new.append((a, password))
    unknown = [u for u in existing if u not in hashes]
    if not prune:
        for u in unknown:
            hashes[u] = existing[u]
    return Credentials(hashes, new, unknown)


def credentials_csv(new: Sequence[tuple[Account, str]], *, header: bool = True) -> str:
    """username,password,role,device_id,format rows."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(["username", "password", "role", "device_id", "format"])
    for a, password in new:
        w.writerow([a.username, password, a.role, a.device_id or "", a.format or ""])
    return buf.getvalue()


# --- command line ------------------------------------------------------------------------------


def cmd_mqtt_acl(settings: Settings, args: argparse.Namespace) -> int:
    """Write the password file and the ACL for the registry's devices; show new passwords once."""
    from core.model import Principal
    from store import queries
    from store.db import connect

    with connect(settings.dsn()) as conn:
        rows = queries.devices(conn, Principal(name="placewatch-cli", role="admin"))
    devices = [(r.id, r.format) for r in rows]
    try:
        plan = plan_accounts(devices, settings)
    except ValueError as exc:
        print(f"placewatch mqtt acl: {exc}", file=sys.stderr)
        return 1
    passwords = Path(args.passwords)
    rotate = None if args.rotate is None else set(args.rotate)
    creds = credentials(plan.accounts, read_password_file(passwords), rotate=rotate, prune=args.prune)
    out = Path(args.credentials_out) if args.credentials_out else None
    if out is not None and creds.new:
        # Appended, never overwritten: a password shown nowhere else must not be lost to a second run.
        first = not out.exists() or out.stat().st_size == 0
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(credentials_csv(creds.new, header=first))
    write_private(passwords, render_password_file(creds.hashes))
    write_private(Path(args.acl), render_acl(plan.accounts, generated_at=datetime.now(UTC)), mode=0o644)
    if out is None and creds.new:
        sys.stdout.write(credentials_csv(creds.new))
    roles = {r: sum(1 for a in plan.accounts if a.role == r) for r in ("service", "gateway", "device")}
    notes = [
        f"{len(plan.accounts)} accounts ({roles['service']} services, {roles['gateway']} gateways, "
        f"{roles['device']} devices); {len(creds.new)} new passwords"
        + (f" appended to {out}" if out is not None and creds.new else "")
    ]
    notes += [f"{n} {fmt} devices publish through gateway-{fmt}" for fmt, n in sorted(plan.via_gateway.items())]
    notes += [f"no account for device {dev!r}: {why}" for dev, why in plan.skipped]
    if creds.kept_unknown:
        verb = "removed" if args.prune else "kept (use --prune to remove)"
        notes.append(
            f"{len(creds.kept_unknown)} accounts not from the registry {verb}: {', '.join(creds.kept_unknown)}"
        )
    notes.append(f"wrote {passwords} and {args.acl}; make them readable by Mosquitto's user, then reload it (SIGHUP)")
    for n in notes:
        print(n, file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `placewatch mqtt acl` to the command line."""
    mqtt = subparsers.add_parser("mqtt", help="MQTT broker security").add_subparsers(dest="mqtt_command", required=True)
    acl = mqtt.add_parser(
        "acl",
        help="write Mosquitto's password file and ACL from the registry (per-device credentials)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    acl.add_argument(
        "--passwords", required=True, metavar="FILE", help="Mosquitto password_file to write (kept hashes)"
    )
    acl.add_argument("--acl", required=True, metavar="FILE", help="Mosquitto acl_file to write")
    acl.add_argument(
        "--credentials-out",
        metavar="FILE",
        help="append new passwords here as CSV (mode 0600) instead of printing them to standard output",
    )
    acl.add_argument(
        "--rotate",
        nargs="*",
        metavar="NAME",
        help="new passwords for these usernames or device ids (all accounts when none is named)",
    )
    acl.add_argument("--prune", action="store_true", help="drop accounts the registry does not explain")
    acl.set_defaults(fn=cmd_mqtt_acl)
