-- Pre-filled gifts: id bench_id(n), a valid code derived from n, status :status.
-- psql -v first=… -v last=… -v status=… -f fill.sql
INSERT INTO gifts (id, code, amount, message, status, created_at, updated_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid,
       'GIFT-' || substr(lpad(n::text, 12, '0'), 1, 4) || '-' || substr(lpad(n::text, 12, '0'), 5, 4) || '-' || substr(lpad(n::text, 12, '0'), 9, 4),
       1000, 'thank you', :'status', now(), now()
FROM generate_series(:first::bigint, :last::bigint) AS n;
