"""The pages: static HTML shells and their scripts and styles, served by the API.

No authentication here: a page holds no data. Its script signs in at /api/v1/auth/token, keeps the token in
sessionStorage and reads everything from the API with it, so the API's scoping is the only gate. Scripts are
files (no inline script or handler), so the pages work under `script-src 'self'`. Plotly comes from the
installed plotly package, never a CDN.
"""

from __future__ import annotations

import functools
import gzip
import mimetypes
import re
from importlib import resources
from pathlib import Path
from string import Template

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATES = HERE / "templates"
VENDOR_MAX_AGE = 365 * 24 * 3600  # the URL carries plotly's version, so a new version is a new URL

# path -> (template, title, needs Plotly)
PAGES: dict[str, tuple[str, str, bool]] = {
    "/": ("landing", "Placewatch", False),
    "/login": ("login", "Sign in", False),
    "/highways": ("highways", "Gritting", True),
    "/officer": ("officer", "Damp and mould: homes", False),
    "/officer/home": ("officer_home", "Damp and mould: a home", True),
    "/tenant": ("tenant", "Your home", True),
    "/public": ("public", "Open data: roads and homes", False),  # its map is Leaflet (map.js), no charts
    "/admin": ("admin", "Administration", False),
    "/reports": ("reports", "Season report", True),
}


@functools.cache
def plotly_js_path() -> Path:
    """plotly.min.js as shipped in the installed plotly wheel."""
    path = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))
    if not path.is_file():
        raise RuntimeError(f"plotly.min.js is missing from the plotly package ({path})")
    return path


@functools.cache
def plotly_js_version() -> str:
    """The plotly.js version, from the banner of the bundled file (for cache-busting URLs)."""
    with plotly_js_path().open("r", encoding="utf-8") as f:
        head = f.read(200)
    marker = "plotly.js v"
    i = head.find(marker)
    return head[i + len(marker) :].split()[0] if i >= 0 else "unknown"


@functools.cache
def plotly_js_gzip() -> bytes:
    """plotly.min.js gzipped once (about 4.8 MB becomes 1.4 MB)."""
    return gzip.compress(plotly_js_path().read_bytes(), compresslevel=6, mtime=0)


# Plotly adds style to the page as it loads and draws: its own rules (under the id plotly.js-style-global) and the
# CSS of the libraries it bundles (maplibre, under a hash), each as a <style> element unless an element with that
# id is already there. CSP `style-src 'self'` refuses <style> elements, so each is served as a file and linked
# under its id (with the class Plotly looks for on its own rules).
GLOBAL_STYLE = "plotly.js-style-global"
_RULES_START = '{"X,X div":'  # the rules object: "X" stands for the plot, "Y" for its notifier
_RULE_SUBS = (
    (re.compile(r"^,"), " ,"),
    (re.compile("X"), ".js-plotly-plot .plotly"),
    (re.compile("Y"), ".plotly-notifier"),
)
_BUNDLED_STYLE = re.compile(
    r'document\.getElementById\("([0-9a-f]{16,})"\)\)\{var (\w+)=document\.createElement\("style"\);'
    r'\2\.id="\1",\2\.textContent='
)
_JS_NAME = re.compile(r"[A-Za-z_$][\w$]*")


def _js_string(text: str, i: int) -> tuple[str, int]:
    """The JS string literal starting at text[i] (a quote), and the index just after it."""
    quote, out, i = text[i], [], i + 1
    while text[i] != quote:
        if text[i] == "\\":
            i += 1
        out.append(text[i])
        i += 1
    return "".join(out), i + 1


def _js_rules(text: str, start: int) -> list[tuple[str, str]]:
    """The {"selector": "declarations", ...} object literal at text[start], as pairs in order."""
    rules, i = [], start + 1
    while text[i] != "}":
        if text[i] in "'\"":
            key, i = _js_string(text, i)
        else:  # a bare key, as the minifier writes Y:
            m = _JS_NAME.match(text, i)
            if m is None:
                raise ValueError(f"unexpected {text[i]!r} at {i}")
            key, i = m.group(), m.end()
        if text[i] != ":":
            raise ValueError(f"unexpected {text[i]!r} at {i}")
        value, i = _js_string(text, i + 1)
        rules.append((key, value))
        if text[i] == ",":
            i += 1
    return rules


@functools.cache
def plotly_styles() -> dict[str, str]:
    """Element id -> stylesheet, for each <style> element plotly.min.js would add, read from the bundled file.

    Plotly inserts each of its own rules at the top of its sheet, so the last one comes first here.
    """
    text = plotly_js_path().read_text(encoding="utf-8")
    start = text.find(_RULES_START)
    if start < 0:
        raise RuntimeError("plotly.min.js has no style rules where expected: check dashboards/pages.py")
    rules = []
    for selector, declarations in reversed(_js_rules(text, start)):
        for pattern, repl in _RULE_SUBS:
            selector = pattern.sub(repl, selector)
        rules.append(f"{selector}{{{declarations}}}")
    styles = {GLOBAL_STYLE: "\n".join(rules) + "\n"}
    for m in _BUNDLED_STYLE.finditer(text):
        styles[m.group(1)] = _js_string(text, m.end())[0] + "\n"
    return styles


def _style_links(version: str) -> list[str]:
    """Links to Plotly's stylesheets. Those of bundled libraries (maplibre, for tiled maps, which these pages never
    draw) are linked disabled: the element is there so Plotly adds nothing, and the browser fetches nothing."""
    links = []
    for style_id in plotly_styles():
        href = f"/static/vendor/plotly-style/{style_id}.css?v={version}"
        extra = ' class="no-inline-styles"' if style_id == GLOBAL_STYLE else " disabled"
        links.append(f'<link id="{style_id}" rel="stylesheet" href="{href}"{extra}>')
    return links


@functools.cache
def render(template: str, title: str, charts: bool) -> str:
    """A page: the layout around the page's own template, with its script (and Plotly when it draws charts)."""
    layout = Template((TEMPLATES / "layout.html").read_text(encoding="utf-8"))
    body = (TEMPLATES / f"{template}.html").read_text(encoding="utf-8")
    scripts = []
    if charts:
        v = plotly_js_version()
        scripts += _style_links(v)
        scripts.append(f'<script src="/static/vendor/plotly.min.js?v={v}" defer></script>')
    scripts.append(f'<script type="module" src="/static/{template}.js"></script>')
    return layout.substitute(title=title, page=template, body=body, scripts="\n  ".join(scripts))


def _page(path: str) -> HTMLResponse:
    template, title, charts = PAGES[path]
    return HTMLResponse(render(template, title, charts), headers={"Cache-Control": "no-cache"})


def _route(path: str) -> None:
    def page() -> HTMLResponse:
        return _page(path)

    page.__name__ = f"page_{PAGES[path][0]}"
    router.add_api_route(path, page, methods=["GET"], response_class=HTMLResponse)


for _path in PAGES:
    _route(_path)


@router.get("/static/vendor/plotly.min.js")
def plotly_js(request: Request) -> Response:
    """Plotly from the installed package, cached for a year (gzipped when the browser accepts it)."""
    headers = {
        "Cache-Control": f"public, max-age={VENDOR_MAX_AGE}, immutable",
        "Vary": "Accept-Encoding",
        "ETag": f'"plotly-{plotly_js_version()}"',
    }
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(plotly_js_gzip(), media_type="text/javascript", headers=headers | {"Content-Encoding": "gzip"})
    return FileResponse(plotly_js_path(), media_type="text/javascript", headers=headers)


@router.get("/static/vendor/plotly-style/{style_id}.css")
def plotly_stylesheet(style_id: str, request: Request) -> Response:
    """One of Plotly's stylesheets (see plotly_styles), cached for a year."""
    css = plotly_styles().get(style_id)
    if css is None:
        raise HTTPException(404, detail="not found")
    etag = f'"plotly-{plotly_js_version()}-{style_id[:16]}"'
    headers = {"Cache-Control": f"public, max-age={VENDOR_MAX_AGE}, immutable", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(css, media_type="text/css", headers=headers)


_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}


@router.get("/static/{name:path}")
def static(name: str) -> FileResponse:
    """A file of dashboards/static (scripts, styles, icons); nothing outside it."""
    path = (STATIC / name).resolve()
    if not path.is_relative_to(STATIC) or not path.is_file():
        raise HTTPException(404, detail="not found")
    media = _TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media, headers={"Cache-Control": "no-cache"})
