-- What transcription users asked for: a pinned language, subtitles with
-- timestamps, and group chats that transcribe by themselves.

-- `auto` (the API detects it) or an ISO-639-1 code sent as the API's `language`.
ALTER TABLE users ADD COLUMN transcription_language TEXT NOT NULL DEFAULT 'auto';

-- A chunk's timed segments (seconds from the chunk's start), when the model gives them.
ALTER TABLE transcript_chunks ADD COLUMN segments JSONB;
-- The whole recording's segments, offsets applied and overlaps removed (S3).
ALTER TABLE transcripts ADD COLUMN segments_key TEXT;

-- A group where an admin turned transcription on; the admin who last did pays.
CREATE TABLE group_chats (
    chat_id             BIGINT      PRIMARY KEY,
    autotranscribe      BOOLEAN     NOT NULL DEFAULT false,
    payer_user_id       BIGINT      REFERENCES users (id),
    -- The group was told the payer ran out of coins; cleared by the next paid transcript.
    out_of_coins_told   BOOLEAN     NOT NULL DEFAULT false,
    updated_at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX group_chats_payer ON group_chats (payer_user_id);
