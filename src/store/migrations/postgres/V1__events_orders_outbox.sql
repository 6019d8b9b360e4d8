-- Every accepted notification, exactly as received, with the columns the listener queries on.
CREATE TABLE events (
    sequence        BIGSERIAL PRIMARY KEY,   -- receipt order; cursor for readers and the stream
    event_id        TEXT     NOT NULL UNIQUE,
    event_type      TEXT     NOT NULL,
    event_date      TEXT     NOT NULL,
    event_date_us   BIGINT   NOT NULL,
    order_id        TEXT,
    received_at_us  BIGINT   NOT NULL,
    sender          TEXT,
    client          TEXT,
    facts           TEXT,
    body            BYTEA    NOT NULL
);
CREATE INDEX events_by_order ON events (order_id, event_date_us) WHERE order_id IS NOT NULL;
CREATE INDEX events_by_received ON events (received_at_us);

-- The projection of each service order, kept in step with `events` in the same transaction.
CREATE TABLE service_orders (
    id                    TEXT    PRIMARY KEY,
    state                 TEXT,
    external_id           TEXT,
    order_date            TEXT,
    completion_date_time  TEXT,
    item_count            BIGINT  NOT NULL,
    anomaly_count         BIGINT  NOT NULL,
    event_count           BIGINT  NOT NULL,
    last_event_date_us    BIGINT  NOT NULL,
    updated_at_us         BIGINT  NOT NULL,
    items                 TEXT    NOT NULL
);
CREATE INDEX service_orders_by_state ON service_orders (state, id);
CREATE INDEX service_orders_by_update ON service_orders (updated_at_us);

-- The outbox. A replica claims a due delivery with a lease; when the replica dies, the lease
-- expires and another replica takes the delivery over.
CREATE TABLE deliveries (
    id               BIGSERIAL PRIMARY KEY,
    sink             TEXT    NOT NULL,
    sequence         BIGINT  NOT NULL REFERENCES events (sequence),
    lane             TEXT    NOT NULL,
    event_date_us    BIGINT  NOT NULL,
    state            TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_us       BIGINT  NOT NULL,
    next_attempt_us  BIGINT  NOT NULL,
    last_attempt_us  BIGINT,
    last_error       TEXT,
    lease_until_us   BIGINT,
    leased_by        TEXT,
    UNIQUE (sink, sequence)
);
CREATE INDEX deliveries_pending ON deliveries (sink, lane, event_date_us, sequence)
    WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (sink, id) WHERE state = 'dead';

CREATE TABLE sinks (
    name         TEXT    PRIMARY KEY,
    disabled_us  BIGINT,
    reason       TEXT
);
