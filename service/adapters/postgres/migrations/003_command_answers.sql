-- The first answer to each Idempotency-Key, per actor: a repeated key gets it back and changes nothing.
CREATE TABLE command_answers (
    actor        text        NOT NULL,
    key          text        NOT NULL,
    command      text        NOT NULL,
    status       integer     NOT NULL,
    body         json        NOT NULL,
    answered_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
