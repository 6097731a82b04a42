-- The people Trellis has seen, so that it can tell them about airlock requests. The identity
-- provider is the directory, but Trellis cannot ask it who holds a role, so each browser sign-in
-- and (at most hourly) each bearer token's claims are remembered here. Workspace tokens carry
-- no e-mail or roles and are not recorded.
CREATE TABLE people (
    subject TEXT PRIMARY KEY,
    email TEXT,
    display_name TEXT,
    -- The platform roles of the last sign-in, as a JSON array of names, e.g. ["output-checker"].
    roles TEXT NOT NULL,
    last_seen TEXT NOT NULL
);
