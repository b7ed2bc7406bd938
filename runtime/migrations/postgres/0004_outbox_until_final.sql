-- The outbox row of a send now lives until its gift is SENT or FAILED: after each publish
-- it is due again at the stale deadline (available_at), so the relay's claim of due rows is
-- also the sweep for QUEUED gifts whose message was lost, and the worker's SENT and FAILED
-- updates delete the row in the same statement. The partial index that sweep read is gone:
-- with `status` and `updated_at` in no index, the SENT update is a HOT update (the row stays
-- on its page and no index entry is written), and the free tenth of each new page leaves it
-- room there.

-- How many times the row's message was published. A claim of a row published before is
-- the stale sweep's: its gift outlived the deadline, its message presumed lost.
ALTER TABLE outbox ADD COLUMN publishes integer NOT NULL DEFAULT 0;

-- Rows of gifts already settled (a publish's removal that had not landed) have no purpose.
DELETE FROM outbox o USING gifts g WHERE g.id = o.gift_id AND g.status IN ('SENT', 'FAILED');

-- Every QUEUED gift without a row (its message published under the old rule) gets one,
-- due at the stale deadline of the old sweep's default (STALE_QUEUED_SECONDS, 900 s) from
-- its QUEUED time, as that sweep would have found it. Before the index goes: it finds them.
INSERT INTO outbox (gift_id, request_id, available_at, publishes)
SELECT DISTINCT ON (s.gift_id) s.gift_id, s.request_id, g.updated_at + interval '900 seconds', 1
FROM gifts g JOIN send_requests s ON s.gift_id = g.id
WHERE g.status = 'QUEUED' AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.gift_id = g.id)
ORDER BY s.gift_id, s.created_at DESC, s.request_id DESC;

DROP INDEX gifts_queued_by_updated_at;
ALTER TABLE gifts SET (fillfactor = 90);
