-- Incidents (issue 21): each is an event stream (incident/<id>) in the events table; this is its read model.
-- A scope (a rule and the values it groups by) has one open incident at most, whichever instance crossed the
-- threshold: the second insert fails on the unique index and that batch is decided again.
CREATE TABLE incidents (
    incident_id  text        PRIMARY KEY,
    scope_key    text        NOT NULL,
    status       text        NOT NULL,
    opened_at    timestamptz NOT NULL,
    version      integer     NOT NULL,
    state        json        NOT NULL  -- json, not jsonb: a scope keeps its keys in their order
);
CREATE UNIQUE INDEX incidents_one_open_per_scope ON incidents (scope_key) WHERE status IN ('proposed', 'declared');
CREATE INDEX incidents_by_status ON incidents (status, opened_at);
-- The cases of an incident, for its page and its counts.
ALTER TABLE cases ADD COLUMN incident_id text;
CREATE INDEX cases_by_incident ON cases (incident_id, status) WHERE incident_id IS NOT NULL;
