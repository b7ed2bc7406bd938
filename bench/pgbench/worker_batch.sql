-- The worker's SQL as it runs it: per batch, one read of all its gifts and one conditional
-- UPDATE of all of them, locked in id order first, whose outbox rows go in the same
-- statement (the worker binds an array of ids; here
-- the array is built from a range, which costs the server a little more). A batch is
-- :batch ids: WORKER_BATCH_SIZE x WORKER_RECEIVES_PER_BATCH under a backlog (20 by
-- default), or one receive's 10. Client c walks its own pre-filled range
-- c * 1000000 + 0, :batch, 2 * :batch, ... (start with -D i=0); a transaction is :batch messages.
\set n :id_base + :client_id * 1000000 + :i * :batch
\set i :i + 1
\set last :n + :batch - 1
SELECT id, code, amount, message, status, last_error, created_at, updated_at FROM gifts WHERE id = ANY (ARRAY(SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(x), 12, '0'))::uuid FROM generate_series(:n::bigint, :last::bigint) AS x));
WITH locked AS (SELECT id FROM gifts WHERE id = ANY (ARRAY(SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(x), 12, '0'))::uuid FROM generate_series(:n::bigint, :last::bigint) AS x)) AND status = 'QUEUED' ORDER BY id FOR UPDATE), sent AS (UPDATE gifts g SET status = 'SENT', updated_at = now() FROM locked WHERE g.id = locked.id AND g.status = 'QUEUED' RETURNING g.id), gone AS (DELETE FROM outbox o USING sent WHERE o.gift_id = sent.id) SELECT id FROM sent;
