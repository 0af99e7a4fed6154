"""Route fixes the framework still needs."""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute


def allow_every_method(app: Litestar) -> None:
    """``OPTIONS`` answers ``Allow`` with every method of the path, not the first one's.

    Litestar 2 builds a path's automatic OPTIONS handler when the path's first handler
    is registered and keeps it when the others join the path (litestar#4169, fixed in
    Litestar 3), so ``OPTIONS /api/events`` said ``Allow: OPTIONS, POST``. The handler
    reads the methods of the route it closes over: point it at the finished route.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if handler.handler_name != "options_handler":
                continue
            for cell in handler.fn.__closure__ or ():
                if isinstance(cell.cell_contents, HTTPRoute):
                    cell.cell_contents = route
