-- The SQL the service actually runs for create + send (runtime/src/postgres/sends.rs): the
-- send is one statement that locks the gift and, if it is CREATED, writes the send request
-- and the outbox row (with the request's traceparent) and queues it; after the publish the
-- row moves to its stale deadline (the service batches these updates across concurrent
-- sends, so this script runs more SQL than it does).
\set amount random(1, 1000000)
INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) VALUES (gen_random_uuid(), 'GIFT-' || upper(substr(md5(random()::text), 1, 14)), :amount, 'thank you', 'CREATED', now(), now()) RETURNING id \gset
WITH target AS (SELECT id, status FROM gifts WHERE id = :id FOR UPDATE), request AS (INSERT INTO send_requests (gift_id, request_id, created_at) SELECT id, 'bench-key', now() FROM target WHERE status = 'CREATED'), outbox_row AS (INSERT INTO outbox (gift_id, request_id, available_at, traceparent) SELECT id, 'bench-key', now() + interval '5 seconds', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00' FROM target WHERE status = 'CREATED'), queued AS (UPDATE gifts g SET status = 'QUEUED', updated_at = now() FROM target t WHERE g.id = t.id AND t.status = 'CREATED') SELECT status FROM target;
UPDATE outbox SET available_at = now() + interval '900 seconds', publishes = publishes + 1 WHERE gift_id = :id AND request_id = 'bench-key';
