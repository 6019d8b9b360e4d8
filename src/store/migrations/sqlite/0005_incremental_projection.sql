-- The incremental projection (issue 11). New events keep their facts in a compact binary form;
-- rows written before keep theirs as JSON in `facts`, and readers take either. Each order's
-- projection row holds its fold, so that one more event is applied without reading the
-- order's other events; a row without one (written before) is rebuilt from its events the
-- next time one of them arrives. `items` (a JSON copy of the items) was never read.
ALTER TABLE events ADD COLUMN facts_c BLOB;
ALTER TABLE service_orders ADD COLUMN fold BLOB;
ALTER TABLE service_orders DROP COLUMN items;
