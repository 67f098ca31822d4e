"""Admin: the registry, dead letters and quarantined (unknown) devices."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from api.deps import Admin, Conn
from core.registry import RegistryError, far_features, parse_registry
from store import queries
from store import registry as store_registry

router = APIRouter(tags=["admin"])
MAX_REGISTRY_BYTES = 50 * 1024 * 1024


@router.put("/registry", summary="Load a registry GeoJSON FeatureCollection (idempotent; a bad file is refused whole)")
async def put_registry(
    request: Request,
    user: Admin,
    prune: Annotated[bool, Query(description="remove what the file no longer lists")] = False,
    dry_run: Annotated[bool, Query(description="say what the load (and prune) would do; change nothing")] = False,
    far_km: Annotated[float | None, Query(gt=0, description="warn about features this far from the rest")] = None,
) -> dict[str, Any]:
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
    return {
        "features": result.features,
        "changed": result.changed,
        "routes": result.routes,
        "devices": result.devices,
        "homes": result.homes,
        "dry_run": result.dry_run,
        "removed": result.removed,
        "kept": result.kept,
        "orphaned": result.orphaned,
        "warnings": [{"kind": f.kind, "id": f.id, "line": f.line, "reason": f.reason} for f in far],
    }


def _payload_view(payload: bytes) -> dict[str, Any]:
    try:
        return {"payload": payload.decode("utf-8"), "payload_encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"payload": base64.b64encode(payload).decode(), "payload_encoding": "base64"}


@router.get("/dead-letters", summary="Rejected messages with topic, payload, reason and received time (admin)")
def dead_letters(
    user: Admin,
    conn: Conn,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: int | None = None,
    device_id: str | None = None,
    reason: str | None = None,
) -> list[dict[str, Any]]:
    """Newest first; page with before_id."""
    rows = queries.dead_letters(conn, limit=limit, before_id=before_id, device_id=device_id, reason=reason)
    return [
        {
            "id": r["id"],
            "topic": r["topic"],
            "reason": r["reason"],
            "received_at": r["received_at"].isoformat(),
            "device_id": r["device_id"],
            "format": r["format"],
            **_payload_view(bytes(r["payload"])),
        }
        for r in rows
    ]


@router.get("/quarantine", summary="Unknown devices that sent messages, with their last messages (admin)")
def quarantine(user: Admin, conn: Conn, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """Devices not in the registry, newest first."""
    out = []
    for r in queries.quarantine(conn, limit=limit):
        out.append(
            {
                "device_id": r["device_id"],
                "messages": r["messages"],
                "last_received": r["last_received"].isoformat(),
                "last_topic": r["last_topic"],
                "last_payloads": [_payload_view(bytes(p))["payload"] for p in r["last_payloads"]],
            }
        )
    return out
