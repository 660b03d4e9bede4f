-- Transcripts: one per transcribe job, created when work starts so progress
-- (status message, stored audio, chunk plan) survives a worker's death.
CREATE TABLE transcripts (
    id                 BIGSERIAL PRIMARY KEY,
    job_id             BIGINT      NOT NULL UNIQUE REFERENCES jobs (id),
    user_id            BIGINT      NOT NULL REFERENCES users (id),
    chat_id            BIGINT      NOT NULL,
    file_unique_id     TEXT        NOT NULL,
    model              TEXT        NOT NULL,
    language           TEXT,
    duration_seconds   DOUBLE PRECISION,
    status_message_id  INT,
    audio_key          TEXT,
    plan               JSONB,
    chunk_count        INT,
    text_key           TEXT,
    chars              INT,
    preview            TEXT,
    delivered_at       TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX transcripts_user ON transcripts (user_id, id DESC) WHERE delivered_at IS NOT NULL;

-- Each finished chunk, so a resumed job continues where the last worker stopped.
CREATE TABLE transcript_chunks (
    transcript_id  BIGINT           NOT NULL REFERENCES transcripts (id),
    idx            INT              NOT NULL,
    start_seconds  DOUBLE PRECISION NOT NULL,
    end_seconds    DOUBLE PRECISION NOT NULL,
    text           TEXT             NOT NULL,
    PRIMARY KEY (transcript_id, idx)
);
