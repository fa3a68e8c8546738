-- An Idempotency-Key is remembered with the command's domain result (the case it left, at which version, and
-- whether it opened it), no longer with the HTTP body: a repeated key is answered with the case at that
-- version. Answers remembered before keep their body (sealed when it showed a case) and are read as before:
-- the service takes the case id and version from it (service/adapters/postgres/command_store.py).
ALTER TABLE command_answers ADD COLUMN case_id text;
ALTER TABLE command_answers ADD COLUMN version integer;
ALTER TABLE command_answers ADD COLUMN opened boolean;
ALTER TABLE command_answers ALTER COLUMN body DROP NOT NULL;
ALTER TABLE command_answers ALTER COLUMN status DROP NOT NULL;
