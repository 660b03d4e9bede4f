-- Who may have a getUpdates open, and until when, durable where Redis is
-- not: the Redis lease elects the poller, this row fences it. A poller
-- extends its own row before each poll; another may take it only once the
-- last poll it covers has surely ended.
CREATE TABLE poll_fence (
    id          INT         PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    holder      TEXT        NOT NULL DEFAULT '',
    poll_until  TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
INSERT INTO poll_fence DEFAULT VALUES;

-- Whoever handles a recorded update claims it first, for a while: after a
-- leader change the old leader may still be handling what the new one would
-- recover. An update whose claim lapsed unhandled is recovered again.
ALTER TABLE telegram_updates ADD COLUMN handling_until TIMESTAMPTZ;
