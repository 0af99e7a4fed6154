"""How the HTTP and WebSocket API treats its clients: origins, proxies, limits on feeds."""

from __future__ import annotations

import attrs


@attrs.frozen(kw_only=True)
class HttpPolicy:
    """The edge's rules, from settings; the defaults are the safe ones.

    ``limit_loopback`` is False only in the embedded profile, where loopback clients are
    the developer's own (api.md: the embedded defaults never limit them).
    """

    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Origins whose pages may call the API from a browser; none by default."""
    trusted_proxies: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    """Addresses or CIDR networks whose ``X-Forwarded-For`` is believed."""
    limit_loopback: bool = True
    """Whether rate limits count loopback clients."""
    hsts_seconds: int = 31_536_000
    """``Strict-Transport-Security`` max-age on answers over HTTPS (0: no header)."""
    ws_max_message_bytes: int = 4096
    """Largest message a WebSocket client may send."""
    ws_max_messages_per_minute: int = 120
    """Messages a WebSocket client may send per minute on one feed."""
    ws_max_connections_per_user: int = 10
    """Feeds one signed-in user may hold open in this process."""
    ws_max_connections_per_address: int = 100
    """Feeds one client address may hold open in this process."""
    stripe_publishable_key: str = ""
    """Stripe's publishable key for the checkout page's card form ("": no Stripe there)."""
    turnstile_site_key: str = ""
    """Turnstile's site key for the waiting room's challenge ("": no challenge shown)."""
