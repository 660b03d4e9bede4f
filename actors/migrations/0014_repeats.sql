-- Repeats: audio whose file was transcribed before is not transcribed
-- again. What changes the result keys it beside the file's unique id: the
-- model (speakers or not) and the spoken language the payer set ('auto' to
-- detect). Rows from before this have no spoken language and are never reused.
ALTER TABLE transcripts ADD COLUMN spoken_language TEXT;
-- The transcript a repeat's text was copied from. The copy is the repeat's
-- own (its own objects in S3), so /deletemydata of either leaves the other.
ALTER TABLE transcripts ADD COLUMN repeat_of BIGINT REFERENCES transcripts (id) ON DELETE SET NULL;
CREATE INDEX transcripts_by_file ON transcripts (file_unique_id, model, spoken_language, id DESC)
    WHERE text_key IS NOT NULL;
