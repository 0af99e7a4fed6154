"""Payment provider adapters: mock, Stripe, LINE Pay."""
