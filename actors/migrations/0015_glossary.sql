-- A user's glossary (/glossary): names and terms with the forms they are
-- misheard as, as JSON ([{"term": …, "heard": […]}]).
ALTER TABLE users ADD COLUMN glossary JSONB NOT NULL DEFAULT '[]';
-- The glossary a transcript was made with: it changes the result, so it is
-- part of a repeat's key (NULL: none, as every transcript before this).
ALTER TABLE transcripts ADD COLUMN glossary TEXT;
