"""Challenge verifiers: Cloudflare Turnstile, and none for sessions that require no challenge."""

from openticket.adapters.challenge.no_challenge import NoChallenge
from openticket.adapters.challenge.turnstile import TurnstileVerifier

__all__ = ["NoChallenge", "TurnstileVerifier"]
