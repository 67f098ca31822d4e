"""Security headers on every response, pages and API alike (a pure ASGI middleware: streaming stays streaming)."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages are served by this process with their scripts and styles: nothing from a CDN, no inline script,
# no <style> blocks. Style *attributes* are allowed (style-src-attr): Plotly sets a few with setAttribute,
# and an attribute can restyle but never run anything.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# FastAPI's interactive docs (/docs, /redoc) load Swagger UI / ReDoc from jsDelivr with one inline start-up
# script. They show the schema only, never data, so they get their own policy rather than weakening the rest.
DOCS_CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net",
        "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com",
        "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly",
        "font-src 'self' https://fonts.gstatic.com",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=()"
)
HSTS = "max-age=31536000; includeSubDomains"

_COMMON: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeadersMiddleware:
    """Adds the headers to every HTTP response that does not already set them.

    Strict-Transport-Security only when the request came over https (directly, or through a proxy
    uvicorn trusts for X-Forwarded-Proto): over plain http it would be ignored, or pin a test host.
    """

    def __init__(self, app: ASGIApp, *, img_sources: tuple[str, ...] = ()) -> None:
        self.app = app
        # The map's tile server (PLACEWATCH_MAP_TILE_URL), when one is configured, may serve images to the pages.
        self.page_policy = (
            CONTENT_SECURITY_POLICY.replace(
                "img-src 'self' data: blob:", " ".join(("img-src 'self' data: blob:", *img_sources))
            )
            if img_sources
            else CONTENT_SECURITY_POLICY
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_COMMON)
        csp = DOCS_CONTENT_SECURITY_POLICY if scope.get("path") in DOCS_PATHS else self.page_policy
        extra.append((b"content-security-policy", csp.encode()))
        if scope.get("scheme") == "https":
            extra.append((b"strict-transport-security", HSTS.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                message["headers"] = headers + _missing(headers, extra)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _missing(present: Iterable[tuple[bytes, bytes]], wanted: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {name.lower() for name, _ in present}
    return [(name, value) for name, value in wanted if name not in names]
