-- Managers' approvals list: cases not closed with a compensation awaiting approval (domain:
-- case.awaiting_approval), soonest resolution deadline first, from an index instead of a scan of every
-- case's JSON. Written from the domain's rule on every later save and by any rebuild.
ALTER TABLE cases ADD COLUMN awaiting_approval boolean NOT NULL DEFAULT false;

UPDATE cases SET awaiting_approval = true
WHERE state::jsonb -> 'compensations' @> '[{"status": "awaiting_approval"}]'::jsonb;

CREATE INDEX cases_approvals ON cases (resolution_deadline, case_id)
    WHERE awaiting_approval AND status <> 'closed';
