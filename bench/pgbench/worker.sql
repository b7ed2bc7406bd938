-- Ceiling of the worker: per message, read the gift and record SENT with the conditional
-- UPDATE, which deletes the gift's outbox row. Client c walks its own pre-filled range c * 1000000 + 0, 1, 2, … (start with -D i=0).
\set n :id_base + :client_id * 1000000 + :i
\set i :i + 1
SELECT id, code, amount, message, status, last_error, created_at, updated_at FROM gifts WHERE id = ('00000000-0000-4000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid;
WITH sent AS (UPDATE gifts SET status = 'SENT', updated_at = now() WHERE id = ('00000000-0000-4000-8000-' || lpad(to_hex(:n::bigint), 12, '0'))::uuid AND status = 'QUEUED' RETURNING id) DELETE FROM outbox o USING sent WHERE o.gift_id = sent.id;
