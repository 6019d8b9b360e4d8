-- Retention: pruning finds the deliveries of an event by its sequence (deleting an event also
-- checks the foreign key from deliveries, which needs this index not to scan the outbox), and
-- finished outbox rows by when they finished. `events_by_received` exists since V1.
CREATE INDEX deliveries_by_sequence ON deliveries (sequence);
CREATE INDEX deliveries_finished ON deliveries (last_attempt_us) WHERE state <> 'pending';
