-- A running job whose work is done and that only waits to hand its result
-- over (a message waiting its turn in the bot's send budget) no longer
-- counts against its kind's concurrency: the next job may start meanwhile.
-- Its lease is held as before, so it is still delivered once.
ALTER TABLE jobs ADD COLUMN handing_over BOOLEAN NOT NULL DEFAULT false;
