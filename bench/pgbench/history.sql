-- The send requests of gifts filled as SENT (fill.sql, the same :first, :last and ids), so
-- that send_requests starts with the size and statistics of a database in use rather than
-- empty, on both sides of a comparison: pgbench's connections have no planner settings of
-- their own, and a foreign-key check planned on an empty table stays a sequential scan until
-- the next analyze (the service's connections plan for key lookups: runtime/src/postgres/mod.rs).
-- psql -v first=… -v last=… [-v ids=random] -f history.sql
\if :{?ids}
\else
\set ids ordered
\endif
INSERT INTO send_requests (gift_id, request_id, created_at)
SELECT CASE :'ids' WHEN 'random' THEN md5(n::text)::uuid
                   ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid END,
       'history', now()
FROM generate_series(:first::bigint, :last::bigint) AS n;
