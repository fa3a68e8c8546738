"""/docs (Swagger UI) and /redoc served with their assets from this process: they work where no CDN answers.

The assets come in as a package dependency (`fastapi-offline`, which ships Swagger UI's and ReDoc's
bundles), never as files copied into this repository. FastAPI's own pages load them from a CDN, and ReDoc
loads Google Fonts too. The bundles still name hosts of their own (ReDoc's credit draws Redocly's logo from
its CDN, with no option to turn it off; Swagger UI's validator badge): each page's Content-Security-Policy
lets the browser load from this service only, so nothing is ever requested from the internet (ReDoc drops an
image that fails to load).
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/static/docs"
# The bundles inject inline styles, Swagger UI's page starts it with an inline script, ReDoc's search runs in a
# worker made from a blob: URL. Everything else, and every image, font and request, is this service's.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self';"
    " base-uri 'none'; form-action 'self'"
)


OPENAPI = "/openapi.json"


def install_docs_pages(app: FastAPI) -> None:
    """Serve the OpenAPI document, the bundled assets and the two pages that use them (call with openapi_url,
    docs_url and redoc_url None). The document is a route like every other, not FastAPI's own (a plain
    Starlette route leaves no template for the request metrics, which counted it as `unmatched`)."""
    folder = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(folder)), name="docs-assets")
    router = APIRouter(include_in_schema=False)

    @router.get(OPENAPI)
    async def openapi_document() -> JSONResponse:
        return JSONResponse(app.openapi())

    @router.get("/docs")
    async def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=OPENAPI,
            title=f"{app.title} — API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no badge from validator.swagger.io
        )
        return _offline(page)

    @router.get("/redoc")
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=OPENAPI,
            title=f"{app.title} — API",
            redoc_js_url=f"{ASSETS}/redoc.standalone.js",
            redoc_favicon_url=f"{ASSETS}/favicon.png",
            with_google_fonts=False,
        )
        return _offline(page)

    app.include_router(router)


def _offline(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = PAGE_POLICY
    return page
