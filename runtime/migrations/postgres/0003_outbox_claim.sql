-- A relay claims the due rows it is about to publish until this time, so the relays of
-- several workers do not publish the same row in one pass; a row whose publish never lands
-- is due again when the claim lapses. available_at stays the row's own due time, so the
-- outbox's age still counts from it.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz;
