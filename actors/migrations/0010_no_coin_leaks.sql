-- A job whose result exists (a transcript made: the API was paid for it)
-- keeps its charge: neither a cancel nor the job's death refunds it.
ALTER TABLE jobs ADD COLUMN result_kept_at TIMESTAMPTZ;

-- What the transcription API said it heard of each chunk: the second check
-- on the measured length.
ALTER TABLE transcript_chunks ADD COLUMN heard_seconds DOUBLE PRECISION;

-- In a group, who sent the voice note (the payer paid for it): that member's
-- /deletemydata removes it too.
ALTER TABLE transcripts ADD COLUMN sender_telegram_id BIGINT;
CREATE INDEX transcripts_sender ON transcripts (sender_telegram_id) WHERE sender_telegram_id IS NOT NULL;
