-- Suspects (issue 14). Each order's row keeps the reasons it is suspect that are judged when it
-- is saved (`suspects`, one bit each: missedTransition 1, itemNotFinal 2, creationMissing 4,
-- outOfStep 8; 0 for none). Stale is judged when read, from `state` and `last_event_date_us`,
-- walking `service_orders_by_state` for each non-final state. An order saved before keeps 0
-- until its next event, when its fold (written before the rules) is rebuilt from its events.
ALTER TABLE service_orders ADD COLUMN suspects INTEGER NOT NULL DEFAULT 0;
-- Only suspect orders are in this index: saving an order that is not suspect (the usual case)
-- never touches it, and lists and counts of suspects read only suspects.
CREATE INDEX service_orders_suspect ON service_orders (id) WHERE suspects <> 0;
