-- The poller claims an update as it records it (no second commit to claim
-- it before handling): `handling_by` names the recorder until a handler's
-- claim takes over. And the per-user in-flight counts, asked on every paid
-- request, read only what is in flight, not a user's whole history.
ALTER TABLE telegram_updates ADD COLUMN handling_by TEXT;

CREATE INDEX jobs_user_in_flight ON jobs (user_id) WHERE state IN ('queued', 'running');
CREATE INDEX fal_requests_user_submitted ON fal_requests (user_id) WHERE state = 'submitted';
