-- The queue orders open cases by the next deadline of any running clock (domain: case.next_deadline), then
-- case_id. NULL when no clock runs (a paused case whose clocks the pause holds): it sorts last, as infinity.
ALTER TABLE cases ADD COLUMN next_deadline timestamptz;

-- The cases stored before this column, from their snapshots: each clock not stopped (first response until
-- acknowledged, resolution, the named ones), less those an open pause holds (pausable, not breached when the
-- pause began). Written from the domain's rule on every later save and by any rebuild.
UPDATE cases c SET next_deadline = (
    SELECT min(clock.deadline)
    FROM (
        SELECT c.first_response_deadline AS deadline, 'first_response' AS name
        WHERE c.state->>'acknowledged_at' IS NULL
        UNION ALL
        SELECT c.resolution_deadline, 'resolution'
        UNION ALL
        SELECT (n->>'deadline')::timestamptz, n->>'name'
        FROM json_array_elements(coalesce(c.state->'clocks', '[]'::json)) n
        WHERE n->>'name' NOT IN ('first_response', 'resolution') AND n->>'stopped_at' IS NULL
    ) clock
    WHERE NOT coalesce(
        c.state->'pauses'->-1 IS NOT NULL
        AND (c.state->'pauses'->-1->>'ended_at') IS NULL
        AND clock.deadline > (c.state->'pauses'->-1->>'started_at')::timestamptz
        AND coalesce((
            SELECT (s->>'pausable')::boolean
            FROM json_array_elements(coalesce(c.state->'clocks', '[]'::json)) s
            WHERE s->>'name' = clock.name AND (s->>'deadline')::timestamptz = clock.deadline
            LIMIT 1
        ), true),
        false
    )
)
WHERE status = 'open';

CREATE INDEX cases_queue ON cases ((coalesce(next_deadline, 'infinity'::timestamptz)), case_id)
    WHERE status = 'open';
