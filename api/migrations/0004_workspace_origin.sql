-- Signing in on the workspace origin (gateway.public_url): a one-time ticket carries a signed-in
-- browser from Trellis's origin to the workspace origin, where it becomes a gateway session.
-- Gateway sessions are kept apart from API sessions: their cookie opens workspaces and nothing
-- else, and only while the Trellis session they came from lives (signing out ends both). Only
-- SHA-256 digests of tickets and cookie values are stored.
CREATE TABLE workspace_tickets (
    ticket_hash TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    parent_hash TEXT NOT NULL,
    return_to TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

CREATE TABLE gateway_sessions (
    id_hash TEXT PRIMARY KEY,
    principal TEXT NOT NULL,
    parent_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX gateway_sessions_expiry ON gateway_sessions (expires_at);
