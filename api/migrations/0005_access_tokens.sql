-- Personal access tokens: what DataSHIELD clients present (as a password, or in X-Opal-Auth) to
-- a project's DataSHIELD server through the API. Only the SHA-256 digest of a token is stored;
-- the token itself is shown once, when it is made. A token names the projects it may be used for
-- (a JSON array of project names) and is refused after `expires_on` (a date, the last day it
-- works, UTC) or once revoked. The owner's name and address are kept as they were at creation,
-- for the audit log and the DataSHIELD server's own records.
CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    owner_name TEXT,
    owner_email TEXT,
    name TEXT NOT NULL,
    projects TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_on TEXT NOT NULL,
    -- Written at most once a minute per token.
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX access_tokens_owner ON access_tokens (owner, created_at);
