"""What people open in a browser: the web page at `/`, and the API docs at `/docs` and `/redoc`.

Everything is served from files installed with the service (the page's own files, and the
Swagger UI and ReDoc assets that the fastapi-offline package bundles), so it works where no CDN
can be reached. The page needs no build step: plain HTML, CSS and JavaScript modules.
"""

from importlib.resources import files
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(str(files("gateway") / "web"))
DOC_ASSETS = Path(fastapi_offline.__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def web_page() -> FileResponse:
    return FileResponse(WEB / "index.html")


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Speech-to-text service: API",
        swagger_js_url="/assets/docs/swagger-ui-bundle.js",
        swagger_css_url="/assets/docs/swagger-ui.css",
        swagger_favicon_url="/assets/docs/favicon.png",
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title="Speech-to-text service: API",
        redoc_js_url="/assets/docs/redoc.standalone.js",
        redoc_favicon_url="/assets/docs/favicon.png",
        with_google_fonts=False,
    )


def add_pages(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/assets/docs", StaticFiles(directory=DOC_ASSETS), name="doc-assets")
    app.mount("/assets/web", StaticFiles(directory=WEB), name="web")
