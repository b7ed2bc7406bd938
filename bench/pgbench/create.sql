-- Ceiling of POST /gifts: the one INSERT the spec requires (id and code drawn by the server).
\set amount random(1, 1000000)
INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at) VALUES (gen_random_uuid(), 'GIFT-' || upper(substr(md5(random()::text), 1, 14)), :amount, 'thank you', 'CREATED', now(), now());
