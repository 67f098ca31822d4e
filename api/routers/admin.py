"""Admin: the registry, dead letters, unknown devices (and adding them to the registry), the device list with
status, battery and problems, and user accounts."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from api.deps import Admin, Conn, SettingsDep
from api.row_models import RowModels, UtcTime
from api.security import hash_password
from core.devices import DeviceStatus, device_status
from core.health import ProblemCode
from core.model import Role
from core.notifications import valid_email
from core.registry import RegistryError, far_features, parse_registry
from store import health, queries, users
from store import registry as store_registry

router = APIRouter(tags=["admin"])
MAX_REGISTRY_BYTES = 50 * 1024 * 1024


class FarFeature(BaseModel):
    """A feature far from the rest of the registry (a typo in its coordinates, perhaps)."""

    kind: str
    id: str
    line: int | None
    reason: str


class RegistryLoaded(BaseModel):
    """What loading the registry did (or, with dry_run, would do)."""

    features: int
    changed: int
    routes: int
    devices: int
    homes: int
    dry_run: bool
    removed: dict[str, list[str]] = Field(description="the ids the prune removed: routes, devices, homes")
    kept: list[str] = Field(description="what the prune left, and why")
    orphaned: list[str] = Field(description="what points at something gone, in words")
    warnings: list[FarFeature]


@router.put(
    "/registry",
    response_model=RegistryLoaded,
    summary="Load a registry GeoJSON FeatureCollection (idempotent; a bad file is refused whole)",
)
async def put_registry(
    request: Request,
    user: Admin,
    prune: Annotated[bool, Query(description="remove what the file no longer lists")] = False,
    dry_run: Annotated[bool, Query(description="say what the load (and prune) would do; change nothing")] = False,
    far_km: Annotated[float | None, Query(gt=0, description="warn about features this far from the rest")] = None,
) -> RegistryLoaded:
    """Replace or extend the registry from the request body; `warnings` names features far from the rest."""
    raw = await request.body()
    if len(raw) > MAX_REGISTRY_BYTES:
        raise HTTPException(413, detail="registry file too large")
    try:
        text = raw.decode("utf-8")
        reg = parse_registry(text)
    except UnicodeDecodeError:
        raise HTTPException(422, detail={"reason": "the file is not UTF-8 text", "line": None}) from None
    except RegistryError as exc:
        raise HTTPException(422, detail={"reason": exc.reason, "line": exc.line, "feature": exc.feature}) from None
    pool = request.app.state.pool
    try:
        with pool.connection() as conn:
            result = store_registry.load(conn, reg, text=text, loaded_by=user.name, prune=prune, dry_run=dry_run)
    except RegistryError as exc:
        raise HTTPException(422, detail={"reason": exc.reason, "line": exc.line, "feature": exc.feature}) from None
    far = far_features(reg, max_km=far_km or request.app.state.settings.registry_far_km)
    return RegistryLoaded(
        features=result.features,
        changed=result.changed,
        routes=result.routes,
        devices=result.devices,
        homes=result.homes,
        dry_run=result.dry_run,
        removed=result.removed,
        kept=result.kept,
        orphaned=result.orphaned,
        warnings=[FarFeature(kind=f.kind, id=f.id, line=f.line, reason=f.reason) for f in far],
    )


def _payload_view(payload: bytes) -> dict[str, Any]:
    try:
        return {"payload": payload.decode("utf-8"), "payload_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(payload).decode(), "payload_encoding": "base64"}


class DeadLetter(BaseModel):
    """A rejected message, with why."""

    id: int
    topic: str
    reason: str
    received_at: UtcTime
    device_id: str | None
    format: str | None
    payload: str
    payload_encoding: Literal["utf-8", "base64"]


class QuarantinedDevice(BaseModel):
    """A device not in the registry that sent messages."""

    device_id: str
    messages: int
    last_received: UtcTime
    last_topic: str
    last_payloads: list[str] = Field(description="its last messages (UTF-8 text, or base64)")


@router.get(
    "/dead-letters",
    response_model=list[DeadLetter],
    summary="Rejected messages with topic, payload, reason and received time (admin)",
)
def dead_letters(
    user: Admin,
    conn: Conn,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
    device_id: str | None = None,
    reason: str | None = None,
) -> list[DeadLetter]:
    """Newest first; page with before_id."""
    rows = queries.dead_letters(conn, limit=limit, before_id=before_id, device_id=device_id, reason=reason)
    return [
        DeadLetter(
            id=r.id,
            topic=r.topic,
            reason=r.reason,
            received_at=r.received_at,
            device_id=r.device_id,
            format=r.format,
            **_payload_view(bytes(r.payload)),
        )
        for r in rows
    ]


@router.get(
    "/quarantine",
    response_model=list[QuarantinedDevice],
    summary="Unknown devices that sent messages, with their last messages (admin)",
)
def quarantine(user: Admin, conn: Conn, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[QuarantinedDevice]:
    """Devices not in the registry, newest first."""
    return [
        QuarantinedDevice(
            device_id=r.device_id,
            messages=r.messages,
            last_received=r.last_received,
            last_topic=r.last_topic,
            last_payloads=[_payload_view(bytes(p))["payload"] for p in r.last_payloads],
        )
        for r in queries.quarantine(conn, limit=limit)
    ]


# ---------------------------------------------------------------------------------------------
# Devices, unknown devices and users, for the admin pages


class ProblemView(BaseModel):
    """An open device problem, in words."""

    code: ProblemCode
    message: str
    opened_at: UtcTime


class Battery(BaseModel):
    """A device's latest battery reading."""

    value: float
    unit: Literal["%", "V"]
    at: str | None


class AdminDevice(BaseModel):
    """A device as the admin page lists it."""

    id: str
    kind: str
    name: str | None
    home_id: str | None
    room: str | None
    format: str | None
    status: DeviceStatus
    last_seen: UtcTime | None
    expected_interval_s: int | None
    battery: Battery | None
    problems: list[ProblemView]


class DeviceList(BaseModel):
    """The devices that pass the filters, and how many of every device are in each status."""

    counts: dict[str, int] = Field(description="every device by status (online, stale, offline), before filters")
    devices: list[AdminDevice]
    truncated: bool = Field(description="more devices passed the filters than `limit`")


def _battery(latest: dict[str, Any]) -> Battery | None:
    for metric, unit in (("battery", "%"), ("battery_voltage", "V")):
        v = (latest or {}).get(metric)
        if v and isinstance(v.get("value"), int | float):
            return Battery(value=float(v["value"]), unit=unit, at=v.get("ts"))  # type: ignore[arg-type]
    return None


@router.get("/admin/devices", response_model=DeviceList, summary="Devices with status, last seen, battery, problems")
def admin_devices(
    user: Admin,
    conn: Conn,
    settings: SettingsDep,
    status: DeviceStatus | None = None,
    kind: str | None = None,
    problems: Annotated[bool | None, Query(description="true: only devices with an open problem")] = None,
    q: Annotated[str | None, Query(max_length=200, description="id or name contains this")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> DeviceList:
    """Every device, stale and offline first, then by id; filtered by status, kind, problems and text."""
    now = datetime.now(UTC)
    rows = queries.devices(conn, user)
    open_problems = health.open_problems(conn, None)
    counts = {str(s): 0 for s in DeviceStatus}
    picked: list[AdminDevice] = []
    needle = (q or "").strip().lower()
    for r in rows:
        st = device_status(
            r.reported_status,
            r.last_seen,
            r.expected_interval_s,
            now,
            default_interval_s=settings.default_interval_seconds,
            stale_factor=settings.stale_after_factor,
        )
        counts[st] = counts.get(st, 0) + 1
        probs = open_problems.get(r.id, [])
        if (status and st != status) or (kind and r.kind != kind) or (problems is not None and bool(probs) != problems):
            continue
        if needle and needle not in r.id.lower() and needle not in (r.name or "").lower():
            continue
        picked.append(
            AdminDevice(
                id=r.id,
                kind=r.kind,
                name=r.name,
                home_id=r.home_id,
                room=r.room,
                format=r.format,
                status=st,
                last_seen=r.last_seen,
                expected_interval_s=r.expected_interval_s,
                battery=_battery(r.latest),
                problems=[ProblemView(code=p.code, message=p.message, opened_at=p.opened_at) for p in probs],
            )
        )
    order = {DeviceStatus.OFFLINE: 0, DeviceStatus.STALE: 1, DeviceStatus.ONLINE: 2}
    picked.sort(key=lambda d: (order[d.status], not d.problems, d.id))
    return DeviceList(counts=counts, devices=picked[:limit], truncated=len(picked) > limit)


class UnknownDevice(BaseModel):
    """A device that sent messages but is not in the registry."""

    device_id: str
    messages: int
    last_received: UtcTime
    last_topic: str
    last_payload: str | None
    suggested_kind: Literal["road_station", "home_sensor"] = Field(
        description="what its messages look like: a road station (road surface readings) or a home sensor"
    )


_ROAD_WORDS = ("road_surface", "surface_state", "rst", "road")


@router.get("/admin/unknown-devices", response_model=list[UnknownDevice], summary="Unknown devices, for the registry")
def unknown_devices(user: Admin, conn: Conn, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[UnknownDevice]:
    """Devices rejected as unknown (newest first), each with the kind of registry feature its messages suggest."""
    out = []
    for r in queries.quarantine(conn, limit=limit):
        payloads = [_payload_view(bytes(p))["payload"] for p in r.last_payloads]
        text = " ".join(payloads).lower()
        out.append(
            UnknownDevice(
                device_id=r.device_id,
                messages=r.messages,
                last_received=r.last_received,
                last_topic=r.last_topic,
                last_payload=payloads[0] if payloads else None,
                suggested_kind="road_station" if any(w in text for w in _ROAD_WORDS) else "home_sensor",
            )
        )
    return out


class NewDevice(BaseModel):
    """A device to add to the registry (a road station needs its place; a home sensor its home)."""

    id: str = Field(min_length=1, max_length=200)
    kind: Literal["road_station", "home_sensor"]
    name: str | None = Field(default=None, max_length=200)
    home: str | None = Field(default=None, max_length=200, description="a home sensor's home id")
    room: str | None = Field(default=None, max_length=100)
    lon: float | None = Field(default=None, ge=-180, le=180)
    lat: float | None = Field(default=None, ge=-90, le=90)
    expected_interval_s: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    format: str | None = Field(default=None, max_length=50)


class Added(BaseModel):
    """What adding a device did."""

    device_id: str
    kind: str
    changed: int
    feature: dict[str, Any] = Field(description="the registry feature created, as in a registry file")


def device_feature(d: NewDevice) -> dict[str, Any]:
    """The registry GeoJSON feature of a device (CONTRACT.md), from what the admin entered."""
    props: dict[str, Any] = {"kind": d.kind, "id": d.id}
    for key in ("name", "home", "room", "expected_interval_s", "format"):
        value = getattr(d, key)
        if value not in (None, ""):
            props[key] = value
    point = None
    if d.lon is not None and d.lat is not None:
        point = {"type": "Point", "coordinates": [d.lon, d.lat]}
    return {"type": "Feature", "geometry": point, "properties": props}


@router.post(
    "/admin/registry/devices",
    response_model=Added,
    status_code=201,
    summary="Add a device to the registry (a feature of its kind, loaded as a registry file would be)",
)
def add_device(body: NewDevice, request: Request, user: Admin) -> Added:
    """Create the road station or home sensor feature and load it; 422 with the reason in words when it cannot be."""
    if body.kind == "road_station" and (body.lon is None or body.lat is None):
        raise HTTPException(422, detail="a road station needs its place: give its longitude and latitude")
    if body.kind == "home_sensor" and not (body.home or "").strip():
        raise HTTPException(422, detail="a home sensor needs the id of the home it is in")
    if (body.lon is None) != (body.lat is None):
        raise HTTPException(422, detail="give both longitude and latitude, or neither")
    feature = device_feature(body)
    text = orjson.dumps({"type": "FeatureCollection", "features": [feature]}).decode()
    try:
        reg = parse_registry(text)
        with request.app.state.pool.connection() as conn:
            result = store_registry.load(conn, reg, text=text, loaded_by=user.name)
    except RegistryError as exc:
        raise HTTPException(422, detail=exc.reason) from None
    return Added(device_id=body.id, kind=body.kind, changed=result.changed, feature=feature)


_NAME = r"^[^\s\x00-\x1f\x7f/]{1,100}$"


# A user as the admin page lists them (never the password): the store's row.
UserView = RowModels({users.UserListed: "UserView"})[users.UserListed]


class NewUser(BaseModel):
    """A user to create."""

    name: str = Field(pattern=_NAME, description="1 to 100 characters, no spaces or slashes")
    role: Role
    password: str = Field(min_length=8, max_length=200)
    home_id: str | None = Field(default=None, max_length=200)
    patch: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)


class UserChange(BaseModel):
    """Changes to a user; fields left out stay as they are (null clears a home, patch or email)."""

    model_config = {"extra": "forbid"}

    disabled: bool | None = None
    home_id: str | None = Field(default=None, max_length=200)
    patch: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)


class NewPassword(BaseModel):
    """A new password (the old one stops working at once)."""

    password: str = Field(min_length=8, max_length=200)


def _check_scope(conn: Any, role: str, home_id: str | None, patch: str | None, email: str | None) -> None:
    """422 in words when a user's scope does not fit their role or the registry."""
    if role == "tenant" and not home_id:
        raise HTTPException(422, detail="a tenant needs the id of their home")
    if role == "officer" and not patch:
        raise HTTPException(422, detail="a housing officer needs the patch they look after")
    if home_id and not users.home_exists(conn, home_id):
        raise HTTPException(422, detail=f"there is no home {home_id!r} in the registry")
    if patch and not users.patch_exists(conn, patch):
        raise HTTPException(422, detail=f"no home in the registry is in patch {patch!r}")
    if email and not valid_email(email):
        raise HTTPException(422, detail=f"{email!r} is not a plain email address")


def _one_user(conn: Any, name: str) -> users.UserListed:
    for row in users.list_users(conn):
        if row.name == name:
            return row
    raise HTTPException(404, detail=f"no user {name!r}")


@router.get("/admin/users", response_model=list[UserView], summary="Users with role, home or patch, email, disabled")
def list_users(user: Admin, conn: Conn) -> list[users.UserListed]:
    """Every user, by name."""
    return users.list_users(conn)


@router.post(
    "/admin/users",
    response_model=UserView,
    status_code=201,
    summary="Add a user",
    responses={409: {"description": "A user of that name already exists"}},
)
def add_user(body: NewUser, user: Admin, conn: Conn) -> users.UserListed:
    """Create a user with a password; 409 when the name is taken."""
    email = (body.email or "").strip() or None
    home_id = (body.home_id or "").strip() or None
    patch = (body.patch or "").strip() or None
    _check_scope(conn, body.role, home_id, patch, email)
    with conn.transaction():
        if users.get_user(conn, body.name) is not None:
            raise HTTPException(409, detail=f"a user called {body.name} already exists")
        users.add_user(
            conn,
            name=body.name,
            password_hash=hash_password(body.password),
            role=body.role,
            home_id=home_id if body.role == "tenant" else None,
            patch=patch if body.role == "officer" else None,
            email=email,
        )
    return _one_user(conn, body.name)


@router.patch(
    "/admin/users/{name}",
    response_model=UserView,
    summary="Disable or enable a user, or change scope",
    responses={409: {"description": "An admin cannot disable their own account"}},
)
def change_user(name: str, body: UserChange, user: Admin, conn: Conn) -> users.UserListed:
    """Disable or enable an account, assign a tenant's home or an officer's patch, set or clear an email."""
    changes = body.model_dump(exclude_unset=True)
    for key in ("home_id", "patch", "email"):
        if key in changes:
            changes[key] = (changes[key] or "").strip() or None
    if changes.get("disabled") is None:
        changes.pop("disabled", None)
    with conn.transaction():
        row = users.get_user(conn, name)
        if row is None:
            raise HTTPException(404, detail=f"no user {name!r}")
        if changes.get("disabled") and name == user.name:
            raise HTTPException(409, detail="you cannot disable your own account")
        after = replace(row, **changes)
        _check_scope(conn, after.role, after.home_id, after.patch, changes.get("email"))
        users.update_user(conn, name, changes)
    return _one_user(conn, name)


@router.put("/admin/users/{name}/password", response_model=UserView, summary="Reset a user's password")
def reset_password(name: str, body: NewPassword, user: Admin, conn: Conn) -> UserView:
    """Set a new password for a user (tell them it by a safe route)."""
    if not users.update_user(conn, name, {"password_hash": hash_password(body.password)}):
        raise HTTPException(404, detail=f"no user {name!r}")
    return _one_user(conn, name)
