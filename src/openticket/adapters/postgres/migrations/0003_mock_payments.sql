-- The mock payment provider's books, for deployments of several processes: a payment
-- an API process took is checked, cancelled or refunded by a worker, as at a real
-- provider. Used only by the mock provider (tests, demos, load tests).
CREATE TABLE mock_transactions (
    transaction_id   varchar(64) PRIMARY KEY,
    idempotency_key  varchar(255) NOT NULL UNIQUE,
    amount           numeric NOT NULL,
    currency         char(3) NOT NULL,
    status           varchar(20) NOT NULL,
    failure_reason   text,
    settles_at       timestamptz,
    refunded_amount  numeric,
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE mock_refunds (
    idempotency_key  varchar(255) PRIMARY KEY,
    transaction_id   varchar(64) NOT NULL REFERENCES mock_transactions (transaction_id),
    amount           numeric NOT NULL,
    currency         char(3) NOT NULL
);
