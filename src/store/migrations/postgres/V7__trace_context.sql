-- Distributed traces (issue 15): the W3C trace context an event came with, or the listener's
-- span that stored it when traces are exported, as `traceparent[,tracestate]`. Each delivery
-- attempt continues it and passes it on to its sink. NULL for events stored before, or sent
-- without one while traces were off.
ALTER TABLE events ADD COLUMN trace_context TEXT;
