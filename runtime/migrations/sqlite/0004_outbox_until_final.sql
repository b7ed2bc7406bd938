-- The outbox row of a send lives until its gift is SENT or FAILED: see the PostgreSQL
-- migration of the same number. Times are microseconds, as elsewhere.
ALTER TABLE outbox ADD COLUMN publishes INTEGER NOT NULL DEFAULT 0;

DELETE FROM outbox WHERE gift_id IN (SELECT id FROM gifts WHERE status IN ('SENT', 'FAILED'));

INSERT INTO outbox (gift_id, request_id, available_at, publishes)
SELECT g.id,
       (SELECT s.request_id FROM send_requests s WHERE s.gift_id = g.id
        ORDER BY s.created_at DESC, s.request_id DESC LIMIT 1),
       g.updated_at + 900000000, 1
FROM gifts g
WHERE g.status = 'QUEUED' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.gift_id = g.id)
  AND EXISTS (SELECT 1 FROM send_requests s WHERE s.gift_id = g.id);

DROP INDEX gifts_queued_by_updated_at;
