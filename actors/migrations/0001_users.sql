-- Telegram users: the identity every job, charge and transcript hangs off.
CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    telegram_id    BIGINT      NOT NULL UNIQUE,
    username       TEXT,
    first_name     TEXT,
    last_name      TEXT,
    language_code  TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
