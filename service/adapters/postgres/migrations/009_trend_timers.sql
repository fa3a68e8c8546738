-- A root-cause tag above its threshold is looked at again when enough of its cases will have left the
-- trailing window (or at once, when a signal reopened one of its cases): one durable timer per tag, claimed
-- like the SLA timers. The partial index on armed rows makes finding due tags cost O(due), not O(tags).
ALTER TABLE rootcause_trends ADD COLUMN due_at timestamptz;
CREATE INDEX rootcause_trends_due ON rootcause_trends (due_at) WHERE due_at IS NOT NULL;

-- Tags that are trends already had no timer: review them once now, which arms the next one.
UPDATE rootcause_trends SET due_at = now() WHERE active;
