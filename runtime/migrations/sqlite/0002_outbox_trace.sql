-- The W3C traceparent of the request that accepted the send, kept with its outbox row and
-- carried by its queue message, as the SQS message attribute is on AWS.
ALTER TABLE outbox ADD COLUMN traceparent TEXT;
ALTER TABLE queue_messages ADD COLUMN traceparent TEXT;
