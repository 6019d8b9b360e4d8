-- Every seller's dialect (issue 13). Each event records how its seller sent it (`dialect`: onap,
-- tmf641-v4, tmf641-v5, mef-legato-v5, mef-legato-v6) and, when the event only refers to its
-- order, where the seller serves that order (`reference`, MEF's `event.href`). Every event
-- stored before came from ONAP's listener. A constant default is kept in the catalogue, so the
-- table is not rewritten. No index: lists read newest first by sequence and filter as they go,
-- as they do for the event type.
ALTER TABLE events ADD COLUMN dialect TEXT NOT NULL DEFAULT 'onap';
ALTER TABLE events ADD COLUMN reference TEXT;
