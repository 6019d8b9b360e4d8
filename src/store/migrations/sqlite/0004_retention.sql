-- Retention: pruning finds old events by receipt time, the deliveries of an event by its
-- sequence, and finished outbox rows by when they finished. Receipt times and sequences grow
-- with each append, so these indexes grow at their right edge and cost an append little.
CREATE INDEX events_by_received ON events (received_at_us);
CREATE INDEX deliveries_by_sequence ON deliveries (sequence);
CREATE INDEX deliveries_finished ON deliveries (last_attempt_us) WHERE state <> 'pending';
