-- Outgoing events the relay could not map or publish for a reason of their own (parked), and the later
-- events of the same case held behind them so the case's order on Kafka holds. Only the relay that holds
-- the lease publishes; an operator releases (state 'retry') or gives up on (state 'skipped') a row.
--   parked     waits: for an operator when `behind` is null, else for the event at position `behind`
--   retry      released by an operator: the relay publishes the case's open rows in position order
--   published  the relay published it after all; skipped: an operator gave it up, it is never published
-- `reason` is the error's type and a short message of ours, never the event's data (customer free text).
CREATE TABLE parked_events (
    relay        text        NOT NULL,
    position     bigint      NOT NULL,
    stream_id    text        NOT NULL,
    event_id     uuid        NOT NULL,
    behind       bigint,
    reason       text        NOT NULL,
    state        text        NOT NULL DEFAULT 'parked'
                 CHECK (state IN ('parked', 'retry', 'published', 'skipped')),
    parked_at    timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz,
    PRIMARY KEY (relay, position)
);
-- The relay reads the open rows on every turn: normally none, so an empty partial index answers.
CREATE INDEX parked_events_open ON parked_events (relay, stream_id, position)
    WHERE state IN ('parked', 'retry');
