-- A due timer whose case snapshot cannot be read is set aside (fired_at and set_aside_at set), not fired: once
-- the snapshot reads again (a rebuild, an upcaster) the timer loop arms it again (both cleared) and it fires.
ALTER TABLE sla_timers ADD COLUMN set_aside_at timestamptz;
CREATE INDEX sla_timers_set_aside ON sla_timers (set_aside_at) WHERE set_aside_at IS NOT NULL;
