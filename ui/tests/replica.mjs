// The browser test of the page's replica parts, on the real lab: a real `sdlab serve`
// (target/debug/sdlab) with its own lab home, driven in Debian's chromium through scenario
// t1-08 (a PostgreSQL primary and a real streaming replica made by pg_basebackup). The solution
// is applied through the API first, so the service reads from the replica. Then, as a learner
// would: t1-01 shows no replica parts; t1-08 shows the three replication charts, the
// apply-delay box and the SQL console's "on the replica" choice; Start; the console on the
// replica answers from a server in recovery (pg_is_in_recovery() = t) and shows the standby's
// own refusal of a write, while the same query without the choice runs on the primary; the
// delay box sets 1500 ms, which the replica itself then reports (SHOW
// recovery_min_apply_delay); Run load fills the replication charts from the stream's `replica`
// samples with real figures (the apply delay drawn at 1.5 s, a replay lag that grows towards
// it while the load writes, the replica's CPU); Stop leaves no process of the lab home behind.
//
// Run: npm --prefix ui run build && node ui/tests/replica.mjs (after `cargo build -p sdlab-cli`).
// The lab home is /tmp/sdlab-tests/ui-home, shared with ui/tests/e2e.mjs and redis.mjs (run
// them first, as scripts/test.sh does: the kit's crates are compiled once there); t1-08's code
// and database are reset at the start of every run. Screenshots: target/ui-artifacts/replica-*.png.

import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { applySolution, artifacts, chartValues as values, chromiumPath, home, labGone, labProcesses, MINUTE, repo, reporter, sdlabBin, serve, stopServe } from './lab.mjs';

const SCENARIO = 't1-08';
const { check, shot, elapsed } = reporter('replica');

/** The replica's postmaster: a postgres whose data directory is the scenario's replica cluster. */
const replicaServers = () => labProcesses().filter((p) => /postgres/.test(p.cmd) && p.cmd.includes(`/pg/${SCENARIO}/replica`));

/** Runs `query` in the SQL console, on the replica or not; resolves with the output's text. */
async function sql(page, query, onReplica) {
  await page.fill('#sql-input', query);
  await page.setChecked('#sql-replica', onReplica);
  await page.click('#btn-sql');
  await page.waitForFunction(() => document.querySelector('#sql-output').textContent !== 'running…', null, { timeout: 30_000 });
  return page.textContent('#sql-output');
}

async function main() {
  check(existsSync(sdlabBin), `${sdlabBin} exists (cargo build -p sdlab-cli)`);
  check(existsSync(join(repo, 'ui/dist/index.html')), 'ui/dist is built (npm --prefix ui run build)');
  const executablePath = chromiumPath();
  check(executablePath, 'chromium is installed (bash scripts/deps.sh --test)');
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(home, { recursive: true });
  check(replicaServers().length === 0, `no replica of ${home} runs before the test (${JSON.stringify(replicaServers())})`);

  const server = serve();
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  let page = null;
  try {
    const url = await server.url;
    // The broken code and the seeded database, whatever an earlier run left; then the
    // solution, file by file, as a learner applies it: the service reads from the replica.
    const files = await applySolution(url, SCENARIO);
    check(files.some((f) => f.content.includes('DATABASE_REPLICA_URL')), `the solution is applied and reads DATABASE_REPLICA_URL (${files.map((f) => f.path).join(', ')})`);

    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    const foreign = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (!['data:', 'blob:'].includes(u.protocol) && u.hostname !== '127.0.0.1') foreign.push(r.url());
    });
    await page.goto(url);

    // Without a replica: none of its parts.
    await page.click('#scenarios a[data-id=t1-01]');
    await page.waitForFunction(() => window.sdlab.state.scenario?.id === 't1-01', null, { timeout: 30_000 });
    check(await page.isHidden('#replica-control') && await page.isHidden('#sql-replica-choice'), 't1-01 has no apply-delay box and no replica choice');

    // With a replica: the control, the console's choice and the three charts.
    await page.click(`#scenarios a[data-id=${SCENARIO}]`);
    await page.waitForFunction((id) => window.sdlab.state.scenario?.id === id, SCENARIO, { timeout: 30_000 });
    const shown = await page.locator('#replica-control').waitFor({ state: 'visible', timeout: 10_000 }).then(() => true, () => false);
    check(shown, `${SCENARIO} shows the apply-delay box`);
    const ids = await page.evaluate(() => window.sdlab.charts.replicaIds().filter((id) => document.querySelector(`[data-chart="${id}"]`)));
    check(ids.length === 3, `its three replication charts are drawn (${ids})`);

    // Start: the primary (seeded), the replica (copied or kept), the build, the instances.
    await page.waitForSelector('#status[data-state=stopped]', { timeout: 30_000 });
    await page.click('#btn-start');
    await page.waitForSelector('#status[data-state=running]', { timeout: 6 * MINUTE });
    await shot(page, 'started');
    check(replicaServers().length >= 1, `the replica's server runs in the lab home (${replicaServers().map((p) => p.pid)})`);

    // The SQL console, on each server.
    await page.click('#tabs button[data-tab=sql]');
    check(await page.isVisible('#sql-replica-choice'), 'the SQL console offers "on the replica"');
    const onReplica = await sql(page, 'SELECT pg_is_in_recovery() AS standby', true);
    check(/standby\s*t\b/.test(onReplica), `on the replica, pg_is_in_recovery() is t (${JSON.stringify(onReplica)})`);
    const onPrimary = await sql(page, 'SELECT pg_is_in_recovery() AS standby', false);
    check(/standby\s*f\b/.test(onPrimary), `without the choice, the query runs on the primary: f (${JSON.stringify(onPrimary)})`);
    await page.check('#sql-write');
    const refused = await sql(page, 'CREATE TABLE lab_replica_test (id int)', true);
    check(/read-only/.test(refused), `a write on the replica shows the standby's own refusal (${JSON.stringify(refused)})`);
    await page.uncheck('#sql-write');
    await shot(page, 'console');

    // The delay box: 1500 ms, as the replica itself then says.
    await page.click('#tabs button[data-tab=charts]');
    await page.fill('#replica-delay', '1500');
    await page.click('#btn-replica-delay');
    const said = await page.waitForFunction(() => /apply delay now 1500 ms/.test(document.querySelector('#replica-state').textContent), null, { timeout: 30_000 }).then(() => true, () => false);
    check(said, `the box says the new delay (${await page.textContent('#replica-state')})`);
    await page.click('#tabs button[data-tab=sql]');
    const delay = await sql(page, 'SHOW recovery_min_apply_delay', true);
    check(/1500ms/.test(delay), `the replica reports recovery_min_apply_delay = 1500ms (${JSON.stringify(delay)})`);

    // Load from the window: the explore profile writes and reads; the replica's charts fill.
    await page.click('#tabs button[data-tab=charts]');
    await page.click('#btn-load');
    await page.waitForFunction(() => window.sdlab.state.job?.kind === 'load' && window.sdlab.state.job.state !== 'running', null, { timeout: 3 * MINUTE });
    const job = await page.evaluate(() => window.sdlab.state.job);
    check(job.state === 'done', `the load run finished (${job.state} ${job.error ?? ''})`);
    await page.waitForTimeout(2000);
    await page.locator('[data-chart="replica-lag"]').scrollIntoViewIfNeeded();
    await shot(page, 'charts');
    const lag = await values(page, 'replica-lag', 1);
    const applyDelay = await values(page, 'replica-lag', 2);
    const behind = await values(page, 'replica-wal', 1);
    const replicaCpu = await values(page, 'replica-cpu', 2);
    const max = (xs) => Math.max(0, ...xs);
    check(applyDelay.length >= 10 && applyDelay.slice(-5).every((v) => v === 1.5), `the apply delay is drawn at 1.5 s (last: ${applyDelay.slice(-5)})`);
    check(lag.length >= 10 && max(lag) >= 0.75 && max(lag) < 30, `the replay lag has ${lag.length} points and grows towards the delay under writes (up to ${max(lag).toFixed(2)} s)`);
    check(behind.length >= 10 && max(behind) > 0, `WAL not yet replayed has points (up to ${max(behind).toFixed(1)} KiB)`);
    check(replicaCpu.length >= 10 && max(replicaCpu) > 0.01, `the replica's CPU has points (up to ${max(replicaCpu).toFixed(2)} cores: it served reads)`);

    // Stop from the window: the replica goes, and nothing else of the home stays.
    await page.click('#btn-stop');
    await page.waitForSelector('#status[data-state=stopped]', { timeout: MINUTE });
    await labGone();
    check(replicaServers().length === 0, `no replica of ${home} is left after Stop (${JSON.stringify(replicaServers())})`);
    check(labProcesses().length === 0, `no process of ${home} is left after Stop (${JSON.stringify(labProcesses())})`);

    check(foreign.length === 0, `no request left 127.0.0.1 (${foreign.join(', ')})`);
    check(errors.length === 0, `no page errors (${errors.join('; ')})`);
    console.log(`[replica-ui] PASS in ${elapsed()}`);
  } catch (e) {
    if (page) await shot(page, 'FAILED').catch(() => {});
    throw e;
  } finally {
    await browser.close();
    await stopServe(server.child);
  }
}

main().catch((e) => {
  console.error(e.message ?? e);
  console.error(`[replica-ui] FAILED after ${elapsed()}; screenshots in ${artifacts}/replica-*.png`);
  process.exit(1);
});
