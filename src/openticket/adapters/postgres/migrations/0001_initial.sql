-- OpenTicket schema 1: the seed's tables (users, venues, seat_maps, events, sessions,
-- price_categories, orders, order_items, tickets, payments) with what the domain adds:
-- roles, hold id and fencing token on orders, aggregate versions, the outbox and the
-- dedupe record of idempotent consumers.
--
-- Aggregates refer to each other by id only (no foreign keys between aggregates: each
-- is stored and changed on its own); rows inside one aggregate (seat_maps, order_items)
-- belong to it by foreign key.
--
-- Every table has `seq`, the order rows were first stored in (lists are oldest first
-- and their cursors point at a seq); aggregates have `version`, the number of commits
-- that changed them (optimistic concurrency).

CREATE TABLE users (
    user_id        uuid PRIMARY KEY,
    email          varchar(255) NOT NULL UNIQUE,
    display_name   varchar(200) NOT NULL,
    password_hash  text NOT NULL,
    roles          text[] NOT NULL,
    status         varchar(20) NOT NULL,
    created_at     timestamptz NOT NULL,
    version        integer NOT NULL CHECK (version > 0),
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

CREATE TABLE venues (
    venue_id  uuid PRIMARY KEY,
    name      varchar(200) NOT NULL,
    address   jsonb NOT NULL,
    status    varchar(20) NOT NULL,
    version   integer NOT NULL CHECK (version > 0),
    seq       bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);

-- One seat map per venue: areas, their rows and seat numbers.
CREATE TABLE seat_maps (
    venue_id  uuid PRIMARY KEY REFERENCES venues (venue_id) ON DELETE CASCADE,
    layout    jsonb NOT NULL,
    seats     integer NOT NULL CHECK (seats >= 0)
);

CREATE TABLE events (
    event_id      uuid PRIMARY KEY,
    venue_id      uuid NOT NULL,
    organizer_id  uuid NOT NULL,
    name          varchar(200) NOT NULL,
    description   text NOT NULL,
    status        varchar(20) NOT NULL,
    created_at    timestamptz NOT NULL,
    version       integer NOT NULL CHECK (version > 0),
    seq           bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX events_organizer_idx ON events (organizer_id, seq);

CREATE TABLE sessions (
    session_id           uuid PRIMARY KEY,
    event_id             uuid NOT NULL,
    start_time           timestamptz NOT NULL,
    end_time             timestamptz NOT NULL,
    sale_start_time      timestamptz NOT NULL,
    sale_end_time        timestamptz NOT NULL,
    queue_enabled        boolean NOT NULL,
    max_seats_per_order  integer NOT NULL,
    status               varchar(20) NOT NULL,
    version              integer NOT NULL CHECK (version > 0),
    seq                  bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX sessions_event_idx ON sessions (event_id, start_time);

CREATE TABLE price_categories (
    category_id  uuid PRIMARY KEY,
    event_id     uuid NOT NULL,
    name         varchar(200) NOT NULL,
    area_ids     text[] NOT NULL,
    price        numeric NOT NULL CHECK (price >= 0),
    currency     char(3) NOT NULL,
    quota        integer CHECK (quota IS NULL OR quota >= 0),
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX price_categories_event_idx ON price_categories (event_id, seq);

-- Orders carry the hold that reserved their seats and its fencing token: completing
-- the sale presents both, so a hold that expired and was re-granted cannot be sold.
CREATE TABLE orders (
    order_id        uuid PRIMARY KEY,
    user_id         uuid NOT NULL,
    session_id      uuid NOT NULL,
    hold_id         uuid NOT NULL,
    fencing_token   bigint NOT NULL,
    total_amount    numeric NOT NULL,
    currency        char(3) NOT NULL,
    status          varchar(20) NOT NULL,
    created_at      timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    payment_id      uuid,
    completed_at    timestamptz,
    closed_at       timestamptz,
    failure_reason  text,
    version         integer NOT NULL CHECK (version > 0),
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE
);
CREATE INDEX orders_user_idx ON orders (user_id, seq);
CREATE INDEX orders_due_idx ON orders (expires_at) WHERE status IN ('created', 'payment_pending');

CREATE TABLE order_items (
    order_id  uuid NOT NULL REFERENCES orders (order_id) ON DELETE CASCADE,
    position  smallint NOT NULL,
    seat_id   varchar(50) NOT NULL,
    price     numeric NOT NULL,
    currency  char(3) NOT NULL,
    PRIMARY KEY (order_id, position)
);

CREATE TABLE payments (
    payment_id               uuid PRIMARY KEY,
    order_id                 uuid NOT NULL,
    user_id                  uuid NOT NULL,
    provider                 varchar(50) NOT NULL,
    amount                   numeric NOT NULL,
    currency                 char(3) NOT NULL,
    idempotency_key          varchar(255) NOT NULL UNIQUE,
    status                   varchar(20) NOT NULL,
    provider_transaction_id  varchar(255),
    failure_reason           text,
    refund_reason            text,
    created_at               timestamptz NOT NULL,
    processed_at             timestamptz,
    refunded_at              timestamptz,
    version                  integer NOT NULL CHECK (version > 0),
    seq                      bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    UNIQUE (provider, provider_transaction_id)
);
CREATE INDEX payments_order_idx ON payments (order_id, seq);
CREATE INDEX payments_unsettled_idx ON payments (created_at)
    WHERE status IN ('initiated', 'pending');

-- Live tickets. UNIQUE(session_id, seat_id) is the last fence against a double sale:
-- whatever the locks decided, a second ticket for a seat cannot be stored.
CREATE TABLE tickets (
    ticket_id   uuid PRIMARY KEY,
    order_id    uuid NOT NULL,
    session_id  uuid NOT NULL,
    seat_id     varchar(50) NOT NULL,
    user_id     uuid NOT NULL,
    price       numeric NOT NULL,
    currency    char(3) NOT NULL,
    qr_code     varchar(255) NOT NULL UNIQUE,
    status      varchar(20) NOT NULL CHECK (status <> 'voided'),
    issued_at   timestamptz NOT NULL,
    used_at     timestamptz,
    voided_at   timestamptz,
    version     integer NOT NULL CHECK (version > 0),
    seq         bigint NOT NULL UNIQUE,
    UNIQUE (session_id, seat_id)
);
CREATE SEQUENCE tickets_seq_seq OWNED BY tickets.seq;
ALTER TABLE tickets ALTER COLUMN seq SET DEFAULT nextval('tickets_seq_seq');
CREATE INDEX tickets_user_idx ON tickets (user_id, seq);
CREATE INDEX tickets_order_idx ON tickets (order_id);

-- Voided tickets (a refund voids them) move here in the transaction that voids them,
-- which frees the seat for a new sale; they keep their id, QR code and seq.
CREATE TABLE voided_tickets (
    LIKE tickets INCLUDING DEFAULTS,
    PRIMARY KEY (ticket_id),
    CHECK (status = 'voided')
);
ALTER TABLE voided_tickets ALTER COLUMN seq DROP DEFAULT;
CREATE UNIQUE INDEX voided_tickets_qr_code_key ON voided_tickets (qr_code);
CREATE UNIQUE INDEX voided_tickets_seq_key ON voided_tickets (seq);
CREATE INDEX voided_tickets_user_idx ON voided_tickets (user_id, seq);
CREATE INDEX voided_tickets_order_idx ON voided_tickets (order_id);

CREATE VIEW all_tickets AS
    SELECT * FROM tickets
    UNION ALL
    SELECT * FROM voided_tickets;

-- Events stored in the transaction of the change they describe; the relay publishes
-- them and stamps published_at. A crash in between publishes one again, never none.
CREATE TABLE outbox (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    event_type      varchar(100) NOT NULL,
    payload         jsonb NOT NULL,
    occurred_at     timestamptz NOT NULL,
    correlation_id  varchar(200),
    stored_at       timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz
);
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;
CREATE INDEX outbox_published_idx ON outbox (published_at) WHERE published_at IS NOT NULL;

-- Which consumer handled which event: consumers skip an event they handled already.
CREATE TABLE processed_events (
    consumer      varchar(200) NOT NULL,
    event_id      uuid NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
