-- The send requests of gifts filled as SENT (fill.sql), so that send_requests starts with the
-- size and statistics of a database in use rather than empty: PostgreSQL plans the foreign-key
-- check of each outbox insert once per connection, and on a table that was empty when the
-- connection planned it, that check stays a sequential scan until autovacuum next analyzes
-- the table — a cold start that would otherwise dominate a 10-second run.
-- psql -v first=… -v last=… -f history.sql
INSERT INTO send_requests (gift_id, request_id, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid, 'history', now()
FROM generate_series(:first::bigint, :last::bigint) AS n;
