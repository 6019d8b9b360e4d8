-- The outbox: one row per event and sink that should receive it, written in the same
-- transaction as the event. The delivery worker moves a row from pending to delivered, or to
-- dead once the retry horizon has passed.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    sink             TEXT    NOT NULL,
    sequence         INTEGER NOT NULL REFERENCES events (sequence),
    lane             TEXT    NOT NULL,   -- the order id; deliveries of one lane keep eventDate order
    event_date_us    INTEGER NOT NULL,
    state            TEXT    NOT NULL,   -- pending | delivered | dead
    attempts         INTEGER NOT NULL DEFAULT 0,
    created_us       INTEGER NOT NULL,   -- the retry horizon counts from here
    next_attempt_us  INTEGER NOT NULL,
    last_attempt_us  INTEGER,
    last_error       TEXT,
    UNIQUE (sink, sequence)
) STRICT;

-- The head of each lane, and what is due.
CREATE INDEX deliveries_pending ON deliveries (sink, lane, event_date_us, sequence)
    WHERE state = 'pending';
CREATE INDEX deliveries_dead ON deliveries (sink, id) WHERE state = 'dead';

-- A sink that answered 410 Gone is disabled until an operator enables it again.
CREATE TABLE sinks (
    name         TEXT    PRIMARY KEY,
    disabled_us  INTEGER,
    reason       TEXT
) STRICT;
