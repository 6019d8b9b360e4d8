-- Orders fetched from the seller's Service Ordering API for events that only refer to their
-- order (issue 13): one snapshot per event, the order as the seller answered it, when it was
-- fetched. The event's own body is never changed; its `facts_c` hold the merged facts. A
-- snapshot goes with its event (retention deletes both).
CREATE TABLE order_snapshots (
    sequence       INTEGER PRIMARY KEY REFERENCES events (sequence),
    order_id       TEXT    NOT NULL,
    fetched_at_us  INTEGER NOT NULL,
    body           BLOB    NOT NULL             -- the bytes the seller answered
) STRICT;
