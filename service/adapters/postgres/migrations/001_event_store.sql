-- The event log: append-only, one stream per case, a global position for the outgoing feed.
-- Appends take a transaction-scoped advisory lock right before inserting, so positions become
-- visible in the order they were assigned: a reader polling position > cursor never skips one.
CREATE TABLE events (
    position     bigserial   PRIMARY KEY,
    stream_id    text        NOT NULL,
    version      integer     NOT NULL,
    event_id     uuid        NOT NULL,  -- derived from (stream_id, version), so unique with it
    type         text        NOT NULL,
    data         json        NOT NULL,  -- json, not jsonb: written once, read whole; no parse on the hot path
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version UNIQUE (stream_id, version)
);

-- Every signal ever applied, by its idempotency key (source, id); also the customer's history.
CREATE TABLE signal_log (
    source       text        NOT NULL,
    signal_id    text        NOT NULL,
    customer_id  text        NOT NULL,
    kind         text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL,
    severity     text,
    reasons      text[]      NOT NULL,
    category     text        NOT NULL,
    outcome      text        NOT NULL,
    case_id      text,
    PRIMARY KEY (source, signal_id)
);
CREATE INDEX signal_log_by_case ON signal_log (case_id) WHERE case_id IS NOT NULL;
CREATE INDEX signal_log_failures_by_customer ON signal_log (customer_id, occurred_at)
    WHERE severity IS NOT NULL;

-- Read model of cases, written in the same transaction as the events (also the decision snapshot).
CREATE TABLE cases (
    case_id                  text        PRIMARY KEY,
    customer_id              text        NOT NULL,
    ordinal                  integer     NOT NULL,
    status                   text        NOT NULL,
    severity                 text        NOT NULL,
    owner                    text,
    opened_at                timestamptz NOT NULL,
    first_response_deadline  timestamptz NOT NULL,
    resolution_deadline      timestamptz NOT NULL,
    version                  integer     NOT NULL,
    state                    json        NOT NULL,  -- the decision snapshot, read and written whole
    updated_at               timestamptz NOT NULL DEFAULT now(),
    UNIQUE (customer_id, ordinal)
) WITH (fillfactor = 80);  -- room for HOT updates: most batches touch cases without moving a deadline
CREATE UNIQUE INDEX cases_one_open_per_customer ON cases (customer_id) WHERE status = 'open';
CREATE INDEX cases_by_deadline ON cases (resolution_deadline, case_id);
CREATE INDEX cases_by_status_deadline ON cases (status, resolution_deadline, case_id);

-- Where each consumer group stands, moved in the transaction that applied the records.
CREATE TABLE consumer_offsets (
    group_id     text    NOT NULL,
    topic        text    NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint  NOT NULL,
    PRIMARY KEY (group_id, topic, partition)
);
