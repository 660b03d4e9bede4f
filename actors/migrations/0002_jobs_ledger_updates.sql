-- The durable job queue, the coin ledger, and recorded Telegram updates.

CREATE TABLE jobs (
    id               BIGSERIAL PRIMARY KEY,
    kind             TEXT        NOT NULL,
    state            TEXT        NOT NULL DEFAULT 'queued'
                     CHECK (state IN ('queued', 'running', 'done', 'dead', 'cancelled')),
    user_id          BIGINT      REFERENCES users (id),
    chat_id          BIGINT,
    payload          JSONB       NOT NULL DEFAULT '{}'::jsonb,
    -- A redelivered update or callback maps to the same key, so never a second job.
    idempotency_key  TEXT        NOT NULL UNIQUE,
    -- What the user paid; a dead or cancelled job refunds exactly this.
    cost             BIGINT      NOT NULL DEFAULT 0 CHECK (cost >= 0),
    attempts         INT         NOT NULL DEFAULT 0,
    max_attempts     INT         NOT NULL,
    run_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    locked_by        TEXT,
    locked_until     TIMESTAMPTZ,
    last_error       TEXT,
    result           JSONB,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_at       TIMESTAMPTZ,
    finished_at      TIMESTAMPTZ
);
CREATE INDEX jobs_ready ON jobs (kind, run_at, id) WHERE state = 'queued';
CREATE INDEX jobs_leased ON jobs (kind, locked_until) WHERE state = 'running';
CREATE INDEX jobs_user ON jobs (user_id, created_at DESC);

ALTER TABLE users ADD COLUMN balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0);

-- Append-only; users.balance is kept equal to the sum of a user's entries,
-- both written in one transaction.
CREATE TABLE ledger_entries (
    id          BIGSERIAL PRIMARY KEY,
    user_id     BIGINT      NOT NULL REFERENCES users (id),
    delta       BIGINT      NOT NULL CHECK (delta <> 0),
    reason      TEXT        NOT NULL,
    job_id      BIGINT      REFERENCES jobs (id),
    note        TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX ledger_once_per_job ON ledger_entries (job_id, reason) WHERE job_id IS NOT NULL;
CREATE UNIQUE INDEX ledger_one_welcome ON ledger_entries (user_id) WHERE reason = 'welcome_bonus';
CREATE INDEX ledger_user ON ledger_entries (user_id, id DESC);

-- Every update is recorded before its offset is acknowledged; handled_at
-- marks it done, so a restart re-handles what was recorded but not handled.
CREATE TABLE telegram_updates (
    update_id    BIGINT      PRIMARY KEY,
    chat_id      BIGINT,
    payload      JSONB       NOT NULL,
    received_by  TEXT        NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    handled_at   TIMESTAMPTZ,
    error        TEXT
);
CREATE INDEX telegram_updates_unhandled ON telegram_updates (update_id) WHERE handled_at IS NULL;
