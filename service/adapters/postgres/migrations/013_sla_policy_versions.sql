-- Each SLA policy version applied to the open cases, in order: at start-up when the policy file's version is not
-- the last one applied in full, or by `recovery policy apply`. The last row is the version in force; a row with
-- failed > 0 is an apply that left cases uncorrected (logged by id), so the next start applies it again.
CREATE TABLE sla_policy_versions (
    id          bigserial   PRIMARY KEY,
    version     text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    looked_at   integer     NOT NULL,
    changed     integer     NOT NULL,
    failed      integer     NOT NULL
);
