-- The incremental projection and appends without a global lock (issue 11).
--
-- New events keep their facts in a compact binary form (`facts_c`); rows written before keep
-- JSON in `facts`, and readers take either. Each order's projection row holds its fold, so
-- that one more event is applied without reading the order's other events; a row without one
-- is rebuilt from its events the next time one of them arrives. `items` was never read.
ALTER TABLE events ADD COLUMN facts_c BYTEA;
ALTER TABLE service_orders ADD COLUMN fold BYTEA;
ALTER TABLE service_orders DROP COLUMN items;

-- Replicas' append transactions now commit concurrently, so receipt sequences can become
-- visible out of order. The event stream reads in commit-safe order instead: by the writing
-- transaction's id, then sequence, and only below the oldest transaction still running
-- (pg_snapshot_xmin), below which no new row can appear. Rows written before have tx 0.
ALTER TABLE events ADD COLUMN tx xid8 NOT NULL DEFAULT '0';
ALTER TABLE events ALTER COLUMN tx SET DEFAULT pg_current_xact_id();
CREATE INDEX events_by_commit ON events (tx, sequence);

-- Neighbour searches page an order's events by (eventDate, sequence).
DROP INDEX events_by_order;
CREATE INDEX events_by_order ON events (order_id, event_date_us, sequence)
    WHERE order_id IS NOT NULL;
