"""What the units of work of every storage adapter share: repositories made on first use."""

from __future__ import annotations

import functools


class RepositoriesOnFirstUse:
    """A unit of work whose repositories are ``functools.cached_property`` attributes.

    A unit that reads one order makes one repository, not nine. A repository points
    back at its unit, so a unit that kept its repositories would be a reference cycle,
    which only the garbage collector frees: at hundreds of units a second, its
    collections took a quarter of a server's CPU and paused it for up to 0.3 s
    (``docs/performance.md``). The unit calls :meth:`_drop_repositories` when it ends;
    a unit used again makes them afresh.
    """

    def _drop_repositories(self) -> None:
        cls = type(self)
        names = _MADE_ON_FIRST_USE.get(cls)
        if names is None:
            names = _MADE_ON_FIRST_USE[cls] = tuple(
                name
                for klass in cls.__mro__
                for name, value in vars(klass).items()
                if isinstance(value, functools.cached_property)
            )
        attributes = self.__dict__
        for name in names:
            attributes.pop(name, None)


_MADE_ON_FIRST_USE: dict[type, tuple[str, ...]] = {}
