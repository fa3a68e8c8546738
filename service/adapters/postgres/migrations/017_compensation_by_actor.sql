-- The daily limit per actor counts their compensations on every case in the last 24 hours: find them by index
-- instead of a scan of the log (service/adapters/postgres/command_store.py, compensation_history).
CREATE INDEX events_compensation_by_actor ON events ((data->>'actor'), recorded_at)
    WHERE type = 'case.compensation_requested';
