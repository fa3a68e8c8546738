-- The schema version of what each row stores, beside the JSON and not inside it (an event's JSON is also the
-- data of the CloudEvent the relay publishes): events.schema_version is the version of its type's shape,
-- cases.state_version the version of the snapshot's. Readers upcast an older version to the current shape
-- (service/domain/registry.py). Every row written before this migration is version 1. A NOT NULL column with a
-- constant default is stored in the catalogue, not in each row: adding them rewrites neither table.
ALTER TABLE events ADD COLUMN schema_version smallint NOT NULL DEFAULT 1;
ALTER TABLE cases ADD COLUMN state_version smallint NOT NULL DEFAULT 1;
