-- An Idempotency-Key is scoped to its actor and its command's target (the case, or 'customer/<id>' for
-- opening one): the same key on two cases is two commands. Answers kept from before are given the target
-- their own body names, so a key repeated on the same case still gets its first answer back.
ALTER TABLE command_answers ADD COLUMN target text;
UPDATE command_answers
   SET target = CASE WHEN command = 'open' THEN 'customer/' || (body->>'customer_id') ELSE body->>'case_id' END;
UPDATE command_answers SET target = '' WHERE target IS NULL;
ALTER TABLE command_answers ALTER COLUMN target SET NOT NULL;
ALTER TABLE command_answers DROP CONSTRAINT command_answers_pkey;
ALTER TABLE command_answers ADD PRIMARY KEY (actor, target, key);
