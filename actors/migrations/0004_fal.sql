-- Avatars, FAL requests and their callbacks, and generated images.

ALTER TABLE users ADD COLUMN aspect_ratio TEXT NOT NULL DEFAULT 'square_hd';

CREATE TABLE avatars (
    id              BIGSERIAL PRIMARY KEY,
    user_id         BIGINT      NOT NULL REFERENCES users (id),
    name            TEXT        NOT NULL,
    gender          TEXT        NOT NULL,
    state           TEXT        NOT NULL DEFAULT 'collecting'
                    CHECK (state IN ('collecting', 'queued', 'training', 'ready', 'failed', 'cancelled')),
    is_main         BOOLEAN     NOT NULL DEFAULT false,
    trigger_phrase  TEXT        NOT NULL,
    archive_key     TEXT,
    lora_key        TEXT,
    config_key      TEXT,
    error           TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX avatars_one_main ON avatars (user_id) WHERE is_main;
CREATE INDEX avatars_user ON avatars (user_id, id DESC);

CREATE TABLE avatar_photos (
    avatar_id  BIGINT NOT NULL REFERENCES avatars (id),
    n          INT    NOT NULL,
    key        TEXT   NOT NULL,
    sha256     TEXT   NOT NULL,
    width      INT    NOT NULL,
    height     INT    NOT NULL,
    PRIMARY KEY (avatar_id, n),
    UNIQUE (avatar_id, sha256)
);

-- One per FAL submission; job_id is the job that was charged for it.
CREATE TABLE fal_requests (
    request_id    TEXT        PRIMARY KEY,
    job_id        BIGINT      NOT NULL UNIQUE REFERENCES jobs (id),
    user_id       BIGINT      NOT NULL REFERENCES users (id),
    chat_id       BIGINT      NOT NULL,
    kind          TEXT        NOT NULL CHECK (kind IN ('train', 'generate', 'imagine')),
    model         TEXT        NOT NULL,
    status_url    TEXT        NOT NULL,
    response_url  TEXT        NOT NULL,
    cancel_url    TEXT        NOT NULL,
    avatar_id     BIGINT      REFERENCES avatars (id),
    prompt        TEXT,
    aspect_ratio  TEXT,
    language      TEXT,
    state         TEXT        NOT NULL DEFAULT 'submitted'
                  CHECK (state IN ('submitted', 'delivered', 'failed', 'cancelled')),
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ
);

-- Every verified callback, once per request id, even for requests not (yet)
-- known: a callback can arrive before the submission's transaction commits.
CREATE TABLE fal_callbacks (
    request_id   TEXT        PRIMARY KEY,
    status       TEXT        NOT NULL,
    body         JSONB       NOT NULL,
    source       TEXT        NOT NULL CHECK (source IN ('webhook', 'poll', 'timeout')),
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE images (
    id                BIGSERIAL PRIMARY KEY,
    user_id           BIGINT      NOT NULL REFERENCES users (id),
    request_id        TEXT        NOT NULL REFERENCES fal_requests (request_id),
    n                 INT         NOT NULL,
    avatar_id         BIGINT      REFERENCES avatars (id),
    prompt            TEXT        NOT NULL,
    model             TEXT        NOT NULL,
    aspect_ratio      TEXT,
    key               TEXT        NOT NULL,
    telegram_file_id  TEXT,
    favourite         BOOLEAN     NOT NULL DEFAULT false,
    deleted_at        TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (request_id, n)
);
CREATE INDEX images_user ON images (user_id, id DESC) WHERE deleted_at IS NULL;
