-- The durable job queue: work the API server hands to workers (transcodes, thumbnails…).
-- A worker claims a job by taking its lease (lease_owner until lease_expires_at); a job whose
-- lease has expired is claimable again. An idempotency key, when given, makes enqueueing the
-- same logical job twice a no-op. Payloads are JSON text, opaque to the database.
CREATE TABLE IF NOT EXISTS jobs (
    id               UUID PRIMARY KEY,
    kind             TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL CHECK (max_attempts >= 1),
    run_at           TIMESTAMPTZ NOT NULL,
    lease_owner      UUID,
    lease_expires_at TIMESTAMPTZ,
    last_error       TEXT,
    idempotency_key  TEXT UNIQUE,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL
);
-- Claiming scans queued jobs by due time and running jobs by lease expiry.
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, run_at);
CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (state, lease_expires_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
