"""``bootstrap()``: an ``OpenTicket`` wired from settings, ready for ``async with``."""

from __future__ import annotations

from typing import Any

from dependency_injector import providers

from openticket.application.facade import OpenTicket
from openticket.entrypoints.container import Container
from openticket.entrypoints.settings import Settings


def build_container(
    settings: Settings | None = None, *, process: str = "api", **overrides: Any
) -> Container:
    """A container configured from ``settings`` (default: the environment).

    ``process`` is ``api`` (an API process or an embedding application) or ``worker``
    (``openticket worker``). Each keyword replaces the provider of that name with the
    given object, e.g. ``clock=FakeClock()`` or ``lock_store=MyLockStore(...)``.
    """
    container = Container()
    container.config.from_dict((settings or Settings.from_env()).as_config(process))
    for name, value in overrides.items():
        provider = getattr(container, name, None)
        if not isinstance(provider, providers.Provider):
            raise TypeError(f"the container has no provider {name!r}")
        provider.override(providers.Object(value))
    return container


def bootstrap(settings: Settings | None = None, **overrides: Any) -> OpenTicket:
    """The embedded OpenTicket: in-memory adapters, mock payments, no service needed.

    ::

        async with openticket.bootstrap() as tickets:
            order = await tickets.place_order(buyer, session_id, ["A-1-1"])
    """
    app: OpenTicket = build_container(settings, **overrides).app()
    return app
