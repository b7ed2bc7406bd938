-- A relay's claim on a due row (microseconds, as available_at): see the PostgreSQL
-- migration of the same number.
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER;
