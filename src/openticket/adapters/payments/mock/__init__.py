"""The mock payment provider: settles in process, for tests, demos and the embedded profile."""

from openticket.adapters.payments.mock.provider import MockOutcome, MockPaymentProvider

__all__ = ["MockOutcome", "MockPaymentProvider"]
