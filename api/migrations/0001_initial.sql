-- One schema for SQLite and PostgreSQL: portable types only, timestamps as RFC 3339 UTC text
-- (fixed width, so they sort and compare as strings), JSON as text.

-- The audit log is append-only and hash-chained. `audit_head` holds the newest record's sequence
-- number and hash; every writer updates it first, which serialises writers on both databases
-- and lets `audit verify` notice records cut off the end of the chain.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

CREATE TABLE audit_records (
    seq BIGINT PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    roles TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    project TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_records_project ON audit_records (project, seq);

-- Browser sessions, keyed by the SHA-256 of the cookie value (a stolen database does not yield
-- usable cookies).
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Sign-ins in progress: the PKCE verifier and nonce of each authorization request, used once.
CREATE TABLE login_attempts (
    state_hash TEXT PRIMARY KEY,
    pkce_verifier TEXT NOT NULL,
    nonce TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
