-- SOLUTION (login lookup): GET /users/lookup compares lower(email) = lower($1). The unique
-- constraint's index on email stores emails as typed ("USER42@Example.com"), so it cannot
-- answer a question about lower(email). An expression index stores lower(email) itself;
-- the planner uses it when the query's expression matches the index's exactly.
--
-- Not UNIQUE here: the seed's emails are unique in any case, but making it unique would be
-- a product decision (may "A@x.com" and "a@x.com" be two accounts?), not a speed fix.
CREATE INDEX IF NOT EXISTS users_lower_email_idx ON users (lower(email));
