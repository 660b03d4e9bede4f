-- Jobs no user pays for (FAL deliveries and polls, housekeeping) are most of
-- the queue at peak and are never looked up by user: the per-user indexes
-- leave them out, two index entries less for every such job.
DROP INDEX jobs_user;
CREATE INDEX jobs_user ON jobs (user_id, created_at DESC) WHERE user_id IS NOT NULL;
DROP INDEX jobs_user_in_flight;
CREATE INDEX jobs_user_in_flight ON jobs (user_id) WHERE state IN ('queued', 'running') AND user_id IS NOT NULL;
