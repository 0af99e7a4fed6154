"""OpenTicket: sell seats to high-demand events without ever selling a seat twice.

``openticket.bootstrap()`` gives the whole platform in one process (in-memory
adapters, mock payments); see ``openticket.application.facade.OpenTicket``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from openticket._version import __version__

__all__ = ["__version__", "bootstrap"]

if TYPE_CHECKING:
    from openticket.entrypoints.bootstrap import bootstrap


def __getattr__(name: str) -> Any:
    # importing the package stays cheap: the container is loaded on first use
    if name == "bootstrap":
        from openticket.entrypoints.bootstrap import bootstrap  # noqa: PLC0415  # lazy on purpose

        return bootstrap
    raise AttributeError(f"module 'openticket' has no attribute {name!r}")
