-- The W3C traceparent of the request that accepted the send, so the relay's publish
-- continues its trace. Nullable and without a default: adding it rewrites no rows, and
-- code that does not know the column keeps working.
ALTER TABLE outbox ADD COLUMN traceparent text;
