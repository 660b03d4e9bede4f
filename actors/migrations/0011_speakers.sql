-- Who said what: a user who turns speakers on in /settings has every
-- recording transcribed by the diarizing model, at its own price.
ALTER TABLE users ADD COLUMN speakers BOOLEAN NOT NULL DEFAULT false;
