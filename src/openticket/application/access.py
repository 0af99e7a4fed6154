"""Who is asking: the user and roles every use case checks before it acts."""

from __future__ import annotations

import attrs

from openticket.application.errors import Forbidden
from openticket.domain.identity import Role
from openticket.domain.shared import UserId


@attrs.frozen
class Requester:
    """An authenticated caller."""

    user_id: UserId
    roles: frozenset[Role] = frozenset({Role.BUYER})

    def has_role(self, *roles: Role) -> bool:
        """Whether the caller has any of ``roles``."""
        return not self.roles.isdisjoint(roles)

    @property
    def is_admin(self) -> bool:
        """Admins may act on anything."""
        return Role.ADMIN in self.roles

    def require(self, *roles: Role) -> None:
        """Raise ``Forbidden`` unless the caller has one of ``roles`` (admins always pass)."""
        if not self.is_admin and not self.has_role(*roles):
            wanted = " or ".join(r.value for r in roles)
            raise Forbidden(f"this needs the role {wanted}")
