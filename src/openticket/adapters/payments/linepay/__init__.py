"""LINE Pay Online API v3: request, the buyer's approval, confirm with our amount, refund."""

from openticket.adapters.payments.linepay.provider import LinePayProvider, signature

__all__ = ["LinePayProvider", "signature"]
