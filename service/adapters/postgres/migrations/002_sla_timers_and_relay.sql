-- Durable SLA timers: one row per case, SLA and kind; a moved deadline re-arms the row.
-- The partial index on unfired rows makes finding due timers cost O(due), not O(cases).
CREATE TABLE sla_timers (
    case_id   text        NOT NULL,
    sla       text        NOT NULL,
    kind      text        NOT NULL,
    deadline  timestamptz NOT NULL,
    due_at    timestamptz NOT NULL,
    fired_at  timestamptz,
    PRIMARY KEY (case_id, sla, kind)
);
CREATE INDEX sla_timers_due ON sla_timers (due_at) WHERE fired_at IS NULL;

-- Where the outgoing relay stands in the event log (moved after Kafka acknowledged the batch).
CREATE TABLE relay_positions (
    name      text   PRIMARY KEY,
    position  bigint NOT NULL
);
