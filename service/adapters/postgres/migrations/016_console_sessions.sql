-- Console sessions, shared by every replica. The browser's cookie holds a random session id; a row holds
-- only keyed digests (HMAC with RECOVERY_CONSOLE_SESSION_KEY) of that id and of the token signed in with,
-- so a reader of this table can neither present a session nor learn a token. Sign-out deletes the row;
-- a session ends when unused for the idle timeout (seen_at, moved at most once a minute) or at expires_at.
CREATE TABLE console_sessions (
    id_digest bytea PRIMARY KEY,
    token_digest bytea NOT NULL,
    actor text NOT NULL,
    created_at timestamptz NOT NULL,
    seen_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE INDEX console_sessions_actor ON console_sessions (actor, created_at);
CREATE INDEX console_sessions_seen ON console_sessions (seen_at);
CREATE INDEX console_sessions_expires ON console_sessions (expires_at);
