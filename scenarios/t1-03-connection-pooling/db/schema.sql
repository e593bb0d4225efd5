-- Scenario t1-03 schema: a job queue. Clients enqueue payment jobs; workers (the
-- POST /jobs/next endpoint, called by the load like a pool of worker processes would) take
-- the oldest queued job, charge it through the payments provider and delete it.
--
-- The lab runs this file, then seed.sql, into a fresh database, then VACUUM ANALYZE.

CREATE TABLE jobs (
    id           bigserial   PRIMARY KEY,
    account_id   bigint      NOT NULL,
    amount_cents bigint      NOT NULL CHECK (amount_cents > 0),
    -- 'queued' until a worker claims it; 'running' while a worker that released its
    -- connection is charging it (see the solution).
    status       text        NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running')),
    claimed_at   timestamptz,
    created_at   timestamptz NOT NULL DEFAULT now()
);

-- The workers' query reads "the oldest queued job": this partial index holds exactly the
-- queued jobs in id order, so it answers in a few pages however long the queue is.
CREATE INDEX jobs_queued_idx ON jobs (id) WHERE status = 'queued';
