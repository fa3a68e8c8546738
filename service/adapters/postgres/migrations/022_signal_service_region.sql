-- Signals say what failed where (optional data fields `service` and `region`): incidents count the distinct
-- customers of one scope within a window. The surge indexes hold failure signals that carry the field only.
ALTER TABLE signal_log ADD COLUMN service text;
ALTER TABLE signal_log ADD COLUMN region text;
CREATE INDEX signal_log_surges_by_service ON signal_log (service, region, occurred_at)
    WHERE severity IS NOT NULL AND service IS NOT NULL;
CREATE INDEX signal_log_surges_by_region ON signal_log (region, occurred_at)
    WHERE severity IS NOT NULL AND region IS NOT NULL;
