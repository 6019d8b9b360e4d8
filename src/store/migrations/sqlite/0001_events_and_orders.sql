-- Every accepted notification, exactly as received, with the columns the listener queries on.
CREATE TABLE events (
    sequence        INTEGER PRIMARY KEY AUTOINCREMENT, -- receipt order; cursor for readers
    event_id        TEXT    NOT NULL UNIQUE,
    event_type      TEXT    NOT NULL,
    event_date      TEXT    NOT NULL,                  -- normalised RFC 3339, UTC
    event_date_us   INTEGER NOT NULL,                  -- microseconds since the epoch
    order_id        TEXT,                              -- NULL for service-inventory events
    received_at_us  INTEGER NOT NULL,
    sender          TEXT,                              -- the peer address
    client          TEXT,                              -- the authenticated client, if any
    facts           TEXT,                              -- JSON OrderFacts, for the projection
    body            BLOB    NOT NULL                   -- the raw bytes received
) STRICT;

CREATE INDEX events_by_order ON events (order_id, event_date_us) WHERE order_id IS NOT NULL;
CREATE INDEX events_by_type ON events (event_type, sequence);

-- The projection of each service order, kept in step with `events` in the same transaction.
CREATE TABLE service_orders (
    id                    TEXT    PRIMARY KEY,
    state                 TEXT,
    external_id           TEXT,
    order_date            TEXT,
    completion_date_time  TEXT,
    item_count            INTEGER NOT NULL,
    anomaly_count         INTEGER NOT NULL,
    event_count           INTEGER NOT NULL,
    last_event_date_us    INTEGER NOT NULL,
    updated_at_us         INTEGER NOT NULL,
    items                 TEXT    NOT NULL             -- JSON array of ItemProjection
) STRICT;

CREATE INDEX service_orders_by_state ON service_orders (state, id);
CREATE INDEX service_orders_by_update ON service_orders (updated_at_us);
