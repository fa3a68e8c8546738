-- Resolved cases by root cause, for trend detection and GET /v1/trends/root-causes.
ALTER TABLE cases ADD COLUMN root_cause text, ADD COLUMN resolved_at timestamptz;
CREATE INDEX cases_resolved_by_cause ON cases (root_cause, resolved_at) WHERE root_cause IS NOT NULL;

-- Whether a tag is above its threshold now: a trend is published once per crossing, not once per case.
CREATE TABLE rootcause_trends (
    tag        text        PRIMARY KEY,
    active     boolean     NOT NULL,
    crossings  integer     NOT NULL DEFAULT 0,
    crossed_at timestamptz
);
