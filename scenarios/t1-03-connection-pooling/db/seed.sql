-- Scenario t1-03 seed: 20,000 queued jobs, deterministic (same accounts and amounts on
-- every seed), so before and after runs start from the same queue. The load enqueues as
-- many jobs as it asks workers to take, so a working service keeps the queue near this size.

INSERT INTO jobs (account_id, amount_cents, created_at)
SELECT 1 + (g * 7919) % 5000,
       100 + (g * 104729) % 99900,
       now() - interval '1 hour' + g * interval '150 milliseconds'
FROM generate_series(1, 20000) AS g;
