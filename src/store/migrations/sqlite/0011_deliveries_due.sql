-- The due deliveries of a sink in the order the worker takes them (next attempt, then id), so
-- that finding the next few walks the index and stops at the limit. Without it, each poll sorted
-- every pending delivery of the sink: a backlog of 100,000 cost 0.18 s per poll and delivered a
-- few dozen a second (bench/sinks.sh).
CREATE INDEX deliveries_due ON deliveries (sink, next_attempt_us, id) WHERE state = 'pending';
