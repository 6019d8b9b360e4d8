-- Reconciliation (issue 14): who wrote an event. NULL for a seller's notification (every event
-- stored before is one); 'reconciled' for an event the listener synthesized from the order the
-- seller's Service Ordering API answered.
ALTER TABLE events ADD COLUMN source TEXT;
