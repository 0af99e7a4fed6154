"""Stripe: PaymentIntents through the official SDK, signed webhooks."""

from openticket.adapters.payments.stripe.provider import StripePaymentProvider, minor_units

__all__ = ["StripePaymentProvider", "minor_units"]
