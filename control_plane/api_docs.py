"""The API's interactive documentation at ``/docs``, served whole by the control plane itself.

FastAPI's default page loads Swagger UI from a CDN, so on a machine without internet ``/docs``
is blank. Here the page refers only to Swagger UI's files from the installed
``swagger-ui-bundle-v2`` package (Swagger UI 5, which reads OpenAPI 3.1), mounted under
``/docs/swagger-ui``; the project commits none of that JavaScript. ReDoc has no offline package
and is not served.

Both the page and the OpenAPI document answer operators only (any logged-in operator or API
token, no particular role): unauthenticated, the control plane answers only enrolment
redemption, CA/CRL, health and the login page (issue 9). The page's own Swagger UI files are
third-party static assets and stay open.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from control_plane.operators.policy import Authenticated

DOCS_URL = "/docs"
OPENAPI_URL = "/openapi.json"
ASSETS_URL = "/docs/swagger-ui"


def install_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs``, its assets and ``/openapi.json`` (the app is built with docs_url=None
    and openapi_url=None, so FastAPI serves neither unguarded)."""
    app.mount(ASSETS_URL, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")

    @app.get(OPENAPI_URL, include_in_schema=False)
    async def openapi_document(_: Authenticated) -> dict[str, Any]:
        """This app's OpenAPI document, for operators and their tools."""
        return app.openapi()

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(_: Authenticated) -> HTMLResponse:
        """Swagger UI on this app's OpenAPI document, every file from this app."""
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} — API",
            oauth2_redirect_url=None,
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
            # no badge fetched from the online validator
            swagger_ui_parameters={"validatorUrl": None},
        )
