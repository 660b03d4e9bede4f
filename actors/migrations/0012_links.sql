-- Recordings from a link: what the link holds, read (and, where the site
-- states no length, fetched and measured) before anything is charged.
CREATE TABLE links (
    id               BIGSERIAL   PRIMARY KEY,
    user_id          BIGINT      NOT NULL REFERENCES users (id),
    chat_id          BIGINT      NOT NULL,
    url              TEXT        NOT NULL,
    title            TEXT,
    duration_seconds DOUBLE PRECISION,
    -- The audio fetched while reading the link (S3), when its length had to be measured.
    audio_key        TEXT,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX links_user ON links (user_id);
