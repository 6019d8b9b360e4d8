-- Every index costs each append a B-tree insert in the single writer. Listing events by type
-- walks `events` by sequence instead, which is fast for the recent events people list.
DROP INDEX IF EXISTS events_by_type;
