"""Who gets which notification, by which channel: routing rules, the rules file, webhook signatures, retry delays.

Pure: no I/O, no clock. An event has a kind ('gritting.decision', 'damp.case', ...) and an audience, a list of
keys naming who it concerns ('team:highways', 'patch:north', 'home:UPRN', 'user:alice', 'role:admin'). A rule
sends the kinds it matches, for an audience it matches, to one channel and target. Rules come from the users
(each user with an email gets the kinds of their role and scope) and from the council's rules file.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any, Literal
from urllib.parse import urlsplit

Channel = Literal["email", "webhook"]
CHANNELS: tuple[Channel, ...] = ("email", "webhook")
AUDIENCE_TYPES = ("team", "patch", "home", "user", "role")

# An event's audience key: no wildcards. A rule's audience may use * (e.g. 'patch:*', or '*' for everyone).
# Ids come from councils' registries: a patch may be 'Knowle West'. Keys refuse control characters and
# wildcards (rules match keys by pattern).
_AUDIENCE_KEY = re.compile(r"^(team|patch|home|user|role):[^\x00-\x1f\x7f*?\[\]]+$")
_AUDIENCE_PATTERN = re.compile(r"^(\*|(team|patch|home|user|role):[^\x00-\x1f\x7f]+)$")
_KIND = re.compile(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$")
_KIND_PATTERN = re.compile(r"^[a-z0-9_.*-]+$")
_EMAIL = re.compile(r"^[^@\s<>,;:\"()\[\]]+@[^@\s<>,;:\"()\[\]]+\.[^@\s<>,;:\"()\[\]]+$")
_RULE_KEYS = frozenset({"audience", "kinds", "channel", "to", "secret", "note"})
MIN_SECRET_CHARS = 16

# Delay before attempt n+1 after attempt n failed; the last one repeats. With 6 attempts a delivery is tried
# for about 2 h 40 min before it is failed and reported.
BACKOFF: tuple[timedelta, ...] = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=2),
)

# What a user with an email gets by default, by role: (audience template, kinds). {home}, {patch} and {name}
# are the user's. Admins get no domain events, only the summary of deliveries that failed.
ROLE_DEFAULTS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "highways": (("team:highways", ("gritting.*", "device.problem")),),
    "officer": (("patch:{patch}", ("damp.*", "device.problem")),),
    "tenant": (("home:{home}", ("damp.advice", "damp.case")),),
    "admin": (("role:admin", ("notify.failure",)),),
}
FAILURE_KIND = "notify.failure"


class RulesError(ValueError):
    """The rules file is refused; `line` and `entry` (both 1-based) say where."""

    def __init__(self, reason: str, *, line: int | None = None, entry: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.entry = entry
        where = [f"line {line}"] if line is not None else []
        if entry is not None:
            where.append(f"entry {entry}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


@dataclass(frozen=True, slots=True)
class Rule:
    """Send events of these kinds, for this audience, by this channel to this target."""

    audience: str
    kinds: tuple[str, ...]
    channel: Channel
    to: str
    source: str  # where the rule comes from, as people read it: 'user:alice', 'file entry 3'
    secret: str | None = field(default=None, repr=False)  # webhook HMAC key
    line: int | None = None

    def matches(self, kind: str, audience: Iterable[str]) -> bool:
        """True when this rule covers an event of this kind and audience."""
        return any(fnmatchcase(kind, k) for k in self.kinds) and any(fnmatchcase(a, self.audience) for a in audience)

    def view(self) -> dict[str, Any]:
        """The rule as an admin sees it (the secret only as whether there is one)."""
        out: dict[str, Any] = {
            "audience": self.audience,
            "kinds": list(self.kinds),
            "channel": self.channel,
            "to": self.to,
            "source": self.source,
        }
        if self.channel == "webhook":
            out["signed"] = bool(self.secret)
        return out


@dataclass(frozen=True, slots=True)
class Recipient:
    """A user who can receive email: their role and scope decide what they get by default."""

    name: str
    role: str
    email: str
    home_id: str | None = None
    patch: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """Where one delivery goes, and the rule that sent it there."""

    channel: Channel
    to: str
    source: str


def check_audience(audience: Sequence[str]) -> list[str]:
    """The audience keys, checked (a non-empty list of 'team:X', 'patch:X', 'home:X', 'user:X', 'role:X')."""
    if isinstance(audience, str) or not audience:
        raise ValueError("audience must be a non-empty list of keys such as 'team:highways' or 'patch:north'")
    keys = list(dict.fromkeys(audience))
    for key in keys:
        if not isinstance(key, str) or not _AUDIENCE_KEY.match(key):
            raise ValueError(f"audience key {key!r} is not one of {', '.join(t + ':ID' for t in AUDIENCE_TYPES)}")
    return keys


def check_kind(kind: str) -> str:
    """The event kind, checked: dotted lower-case words such as 'gritting.decision'."""
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"kind {kind!r} must be dotted lower-case words, e.g. 'gritting.decision'")
    return kind


def team_audience(team: str) -> str:
    """The audience key of a team as store.health.owning_teams names it ('highways', 'patch:P', 'admin')."""
    if team.startswith("patch:"):
        return team
    return team if team.startswith(("team:", "role:")) else f"team:{team}"


def valid_email(address: str) -> bool:
    """True for a plain address (no display name, no spaces or line breaks)."""
    return bool(_EMAIL.match(address))


def default_rules(recipient: Recipient) -> list[Rule]:
    """What this user gets by default: the kinds of their role for their scope, and anything sent to them."""
    source = f"user:{recipient.name}"
    if not recipient.email or not valid_email(recipient.email):
        return []
    rules = [Rule(audience=f"user:{recipient.name}", kinds=("*",), channel="email", to=recipient.email, source=source)]
    for template, kinds in ROLE_DEFAULTS.get(recipient.role, ()):
        if ("{home}" in template and not recipient.home_id) or ("{patch}" in template and not recipient.patch):
            continue  # a tenant without a home or an officer without a patch has no scope yet
        audience = template.format(home=recipient.home_id, patch=recipient.patch, name=recipient.name)
        rules.append(Rule(audience=audience, kinds=kinds, channel="email", to=recipient.email, source=source))
    return rules


def route(kind: str, audience: Iterable[str], rules: Iterable[Rule]) -> list[Target]:
    """The targets of an event: one per channel and target, from the first rule that names it."""
    keys = list(audience)
    out: dict[tuple[str, str], Target] = {}
    for rule in rules:
        if rule.matches(kind, keys):
            ident = (rule.channel, rule.to.lower() if rule.channel == "email" else rule.to)
            out.setdefault(ident, Target(channel=rule.channel, to=rule.to, source=rule.source))
    return list(out.values())


def parse_rules(text: str, *, env: Mapping[str, str]) -> list[Rule]:
    """The rules of a rules file (a JSON array of rule objects); raise RulesError naming the line and entry.

    A secret written as "env:NAME" is read from env (the process environment at start-up)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RulesError(f"not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(data, list):
        raise RulesError("the file must be a JSON array of rules", line=1)
    lines = _entry_lines(text, len(data))
    rules: list[Rule] = []
    secrets: dict[str, tuple[str | None, int]] = {}
    for i, entry in enumerate(data):
        line = lines[i] if i < len(lines) else None
        try:
            rule = _rule(entry, env=env, source=f"file entry {i + 1}", line=line)
        except RulesError as exc:
            raise RulesError(exc.reason, line=line, entry=i + 1) from None
        if rule.channel == "webhook":
            earlier = secrets.setdefault(rule.to, (rule.secret, i + 1))
            if earlier[0] != rule.secret:
                raise RulesError(
                    f"webhook {rule.to} has a different secret in entry {earlier[1]}; one URL, one secret",
                    line=line,
                    entry=i + 1,
                )
        rules.append(rule)
    return rules


def _rule(entry: Any, *, env: Mapping[str, str], source: str, line: int | None) -> Rule:
    if not isinstance(entry, dict):
        raise RulesError("each rule must be a JSON object")
    unknown = sorted(set(entry) - _RULE_KEYS)
    if unknown:
        raise RulesError(f"unknown key(s) {', '.join(unknown)}; a rule has {', '.join(sorted(_RULE_KEYS))}")
    audience = entry.get("audience")
    if not isinstance(audience, str) or not _AUDIENCE_PATTERN.match(audience):
        raise RulesError(
            f"audience {audience!r} must be '*' or one of {', '.join(t + ':ID' for t in AUDIENCE_TYPES)} "
            "(the ID may use *)"
        )
    kinds = entry.get("kinds")
    if isinstance(kinds, str):
        kinds = [kinds]
    if not isinstance(kinds, list) or not kinds:
        raise RulesError('kinds must be a non-empty list, e.g. ["gritting.*"]')
    for k in kinds:
        if not isinstance(k, str) or not _KIND_PATTERN.match(k):
            raise RulesError(f"kind {k!r} must be a lower-case kind or pattern, e.g. 'gritting.*' or 'damp.case'")
    channel = entry.get("channel")
    if channel not in CHANNELS:
        raise RulesError(f"channel {channel!r} must be one of {', '.join(CHANNELS)}")
    to = entry.get("to")
    if not isinstance(to, str) or not to.strip():
        raise RulesError("to must be an email address (email) or a URL (webhook)")
    to = to.strip()
    secret = entry.get("secret")
    if channel == "email":
        if not valid_email(to):
            raise RulesError(f"to {to!r} is not an email address")
        if secret is not None:
            raise RulesError("secret is only for webhooks")
        return Rule(audience=audience, kinds=tuple(kinds), channel="email", to=to, source=source, line=line)
    url = urlsplit(to)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise RulesError(f"to {to!r} must be an http:// or https:// URL")
    if url.username or url.password:
        raise RulesError("a webhook URL must not carry a user or password; the signature authenticates")
    if not isinstance(secret, str) or not secret:
        raise RulesError('a webhook needs a secret (the HMAC key), given as text or as "env:NAME"')
    if secret.startswith("env:"):
        name = secret[4:]
        if name not in env or not env[name]:
            raise RulesError(f"secret names the environment variable {name}, which is not set")
        secret = env[name]
    if len(secret) < MIN_SECRET_CHARS:
        raise RulesError(f"a webhook secret must be at least {MIN_SECRET_CHARS} characters")
    return Rule(
        audience=audience, kinds=tuple(kinds), channel="webhook", to=to, source=source, secret=secret, line=line
    )


def _entry_lines(text: str, count: int) -> list[int]:
    """The line on which each entry of the top-level array starts."""
    decoder = json.JSONDecoder()
    pos = text.find("[") + 1
    starts: list[int] = []
    try:
        while len(starts) < count:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            starts.append(pos)
            _, pos = decoder.raw_decode(text, pos)
    except json.JSONDecodeError:
        return []
    return [text.count("\n", 0, s) + 1 for s in starts]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Placewatch-Signature of a webhook: 'sha256=' and the hex HMAC-SHA256 of '<timestamp>.<body>'."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """True when signature is sign(secret, timestamp, body) (constant-time; for receivers and tests)."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def retry_delay(attempt: int, schedule: Sequence[timedelta] = BACKOFF) -> timedelta:
    """How long to wait after failed attempt number `attempt` (1-based) before the next."""
    return schedule[min(max(attempt, 1), len(schedule)) - 1]


def delivery_key(dedupe_key: str, channel: str, target: str) -> str:
    """The idempotency key of one delivery: the same for every attempt, and for the same event and target."""
    digest = hashlib.sha256(f"{dedupe_key}\x1f{channel}\x1f{target}".encode()).hexdigest()
    return f"pw-{digest[:32]}"
