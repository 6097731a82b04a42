-- The airlock: requests to bring data in (ingress) or take results out (egress), their files
-- (content-addressed blobs in the object store), per-file votes by round, and every step taken.
-- Records outlive the project they belong to.

CREATE TABLE airlock_requests (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    direction TEXT NOT NULL,
    title TEXT NOT NULL,
    context TEXT NOT NULL,
    controls TEXT NOT NULL,
    author TEXT NOT NULL,
    state TEXT NOT NULL,
    round BIGINT NOT NULL,
    -- Fixed when the request is made, from the project's egress settings.
    reviews_required BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX airlock_requests_project ON airlock_requests (project, created_at);
CREATE INDEX airlock_requests_state ON airlock_requests (state, direction);

-- The request's current files. Earlier versions stay in airlock_history.
CREATE TABLE airlock_files (
    request_id TEXT NOT NULL REFERENCES airlock_requests (id),
    name TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    -- The disclosure record (JSON) from the checks run at submission.
    disclosure TEXT,
    added_at TEXT NOT NULL,
    PRIMARY KEY (request_id, name)
);

CREATE TABLE airlock_votes (
    request_id TEXT NOT NULL REFERENCES airlock_requests (id),
    round BIGINT NOT NULL,
    reviewer TEXT NOT NULL,
    file TEXT NOT NULL,
    vote TEXT NOT NULL,
    comment TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (request_id, round, reviewer, file)
);

CREATE TABLE airlock_history (
    request_id TEXT NOT NULL REFERENCES airlock_requests (id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT NOT NULL,
    to_state TEXT NOT NULL,
    round BIGINT NOT NULL,
    -- JSON: what changed (file name, hash and size; the outcome's comment).
    detail TEXT NOT NULL,
    PRIMARY KEY (request_id, seq)
);
