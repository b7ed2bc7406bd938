-- Ceiling of POST /gifts then POST /gifts/{id}/send: the minimal SQL of the spec.
\set amount random(1, 1000000)
INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) VALUES (gen_random_uuid(), 'GIFT-' || upper(substr(md5(random()::text), 1, 14)), :amount, 'thank you', 'CREATED', now(), now()) RETURNING id \gset
BEGIN;
SELECT status FROM gifts WHERE id = :id FOR UPDATE;
INSERT INTO send_requests (gift_id, request_id, created_at) VALUES (:id, 'bench-key', now());
UPDATE gifts SET status = 'QUEUED', updated_at = now() WHERE id = :id;
COMMIT;
