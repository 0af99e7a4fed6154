"""The API docs page at ``/schema``: Swagger UI shipped inside the package, pinned.

The page loads its script, style and icon from this server's ``/static`` and the
schema from ``/schema/openapi.json``: it works offline, behind a firewall, and loads
nothing a third party could change. The vendored release is named in its path, so a
new release is a new URL and browsers may keep the files for a day.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

SWAGGER_UI_VERSION = "5.35.0"
"""The vendored ``swagger-ui-dist`` release (``static/README.md``)."""

STATIC_PATH = "/static"
STATIC_DIRECTORY = Path(__file__).parent / "static"
_SWAGGER = f"{STATIC_PATH}/swagger-ui-{SWAGGER_UI_VERSION}"


def static_files() -> Router:
    """``GET /static/…``: the package's static files, cacheable for a day."""
    return create_static_files_router(
        path=STATIC_PATH,
        directories=[STATIC_DIRECTORY],
        cache_control=CacheControlHeader(public=True, max_age=86_400),
        include_in_schema=False,
    )


class PackagedSwaggerUI(OpenAPIRenderPlugin):
    """Swagger UI from ``/static``, started by a script file (no inline script)."""

    def __init__(self, path: str = "/swagger") -> None:
        super().__init__(
            path=path,
            favicon=f'<link rel="icon" type="image/png" href="{_SWAGGER}/favicon-32x32.png">',
            style="",
        )

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        """The HTML page; the script reads the schema's address from the page."""
        title = html.escape(str(openapi_schema.get("info", {}).get("title", "API")))
        schema_url = html.escape(self.get_openapi_json_route(request))
        page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
{self.favicon}
<link rel="stylesheet" href="{_SWAGGER}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{schema_url}"></div>
<script src="{_SWAGGER}/swagger-ui-bundle.js"></script>
<script src="{STATIC_PATH}/openticket-docs.js"></script>
</body>
</html>
"""
        return page.encode()
