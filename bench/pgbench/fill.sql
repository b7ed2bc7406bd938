-- Pre-filled gifts: n from :first to :last, status :status, with
--   id    bench_id(n) = 00000000-0000-4000-8000-<n in hex>: below every key the service makes,
--         as the keys of older gifts sort below new ones with the service's time-ordered ids;
--         with -v ids=random, md5(n) instead, spread over the whole key space as version 4
--         ids would be (to measure what time-ordered ids save);
--   code  a valid code whose 12 characters are n scrambled (a bijection: n times an odd
--         constant modulo 2^48, in hex), spread over the key space of gifts_code_key as the
--         service's random codes are.
-- A QUEUED gift also gets its send request and its outbox row, its message published and
-- the row due again at the stale deadline, as the service leaves an accepted send.
-- psql -v first=… -v last=… -v status=… [-v ids=random] -f fill.sql
\if :{?ids}
\else
\set ids ordered
\endif
INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at)
SELECT CASE :'ids' WHEN 'random' THEN md5(n::text)::uuid
                   ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid END,
       'GIFT-' || substr(c, 1, 4) || '-' || substr(c, 5, 4) || '-' || substr(c, 9, 4),
       1000, 'thank you', :'status', now(), now()
FROM generate_series(:first::bigint, :last::bigint) AS n,
     LATERAL (SELECT upper(lpad(to_hex(((n::numeric * 181783497276652981) % 281474976710656)::bigint), 12, '0')) AS c) AS scrambled;
INSERT INTO send_requests (gift_id, request_id, created_at)
SELECT CASE :'ids' WHEN 'random' THEN md5(n::text)::uuid
                   ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid END,
       'bench-key', now()
FROM generate_series(:first::bigint, :last::bigint) AS n WHERE :'status' = 'QUEUED';
INSERT INTO outbox (gift_id, request_id, available_at, publishes)
SELECT CASE :'ids' WHEN 'random' THEN md5(n::text)::uuid
                   ELSE ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid END,
       'bench-key', now() + interval '900 seconds', 1
FROM generate_series(:first::bigint, :last::bigint) AS n WHERE :'status' = 'QUEUED';
