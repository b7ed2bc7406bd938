-- The worker's SQL as it runs it: per received batch of 10, one read of all ten gifts and one
-- conditional UPDATE of all ten, locked in id order first (the worker binds an array of ids; here the array is built from
-- a range, which costs the server a little more). Client c walks its own pre-filled range
-- c * 1000000 + 0, 10, 20, … (start with -D i=0); a transaction is ten messages.
\set n :id_base + :client_id * 1000000 + :i * 10
\set i :i + 1
SELECT id, code, amount, message, status, last_error, created_at, updated_at FROM gifts WHERE id = ANY (ARRAY(SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(x), 12, '0'))::uuid FROM generate_series(:n::bigint, :n::bigint + 9) AS x));
WITH locked AS (SELECT id FROM gifts WHERE id = ANY (ARRAY(SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(x), 12, '0'))::uuid FROM generate_series(:n::bigint, :n::bigint + 9) AS x)) AND status = 'QUEUED' ORDER BY id FOR UPDATE) UPDATE gifts g SET status = 'SENT', updated_at = now() FROM locked WHERE g.id = locked.id AND g.status = 'QUEUED' RETURNING g.id;
