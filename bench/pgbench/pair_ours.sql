-- The SQL the service actually runs for create + send (runtime/src/postgres/mod.rs): the
-- replay check rides on the locking SELECT, the send request and the outbox row are written
-- with the status change in one statement, and the outbox row is deleted after the publish.
\set amount random(1, 1000000)
INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) VALUES (gen_random_uuid(), 'GIFT-' || upper(substr(md5(random()::text), 1, 14)), :amount, 'thank you', 'CREATED', now(), now()) RETURNING id \gset
BEGIN;
SELECT g.status, EXISTS (SELECT 1 FROM send_requests s WHERE s.gift_id = g.id AND s.request_id = 'bench-key') AS seen FROM gifts g WHERE g.id = :id FOR UPDATE OF g;
WITH request AS (INSERT INTO send_requests (gift_id, request_id, created_at) VALUES (:id, 'bench-key', now())), outbox_row AS (INSERT INTO outbox (gift_id, request_id, available_at) VALUES (:id, 'bench-key', now() + interval '5 seconds')) UPDATE gifts SET status = 'QUEUED', updated_at = now() WHERE id = :id;
COMMIT;
DELETE FROM outbox WHERE gift_id = :id AND request_id = 'bench-key';
