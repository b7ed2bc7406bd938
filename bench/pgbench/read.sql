-- Ceiling of GET /gifts/{id}: one SELECT by primary key among the pre-filled gifts.
\set n random(1, :read_ids)
SELECT id, code, amount, message, status, last_error, created_at, updated_at FROM gifts WHERE id = ('00000000-0000-4000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid;
