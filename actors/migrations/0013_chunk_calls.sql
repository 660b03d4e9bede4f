-- A transcription chunk's call to the API while a worker has it in flight,
-- kept alive by that worker every few seconds. A worker that takes the job
-- over (its lease lapsed while the database was away) waits for that call's
-- result instead of paying for the chunk a second time; only a call nobody
-- has kept alive for a while is made again.
CREATE TABLE transcript_chunk_calls (
    transcript_id  BIGINT      NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    idx            INT         NOT NULL,
    worker         TEXT        NOT NULL,
    -- The caller's pool's presence lock (pool/presence.rs): while nobody
    -- holds it, its process is gone, and its call with it.
    presence       TEXT        NOT NULL,
    alive_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (transcript_id, idx)
);
