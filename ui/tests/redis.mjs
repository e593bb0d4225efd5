// The browser test of the page's Redis parts, on the real lab: a real `sdlab serve`
// (target/debug/sdlab) with its own lab home, driven in Debian's chromium through scenario
// t1-05 (PostgreSQL, a real redis-server with maxmemory 2mb, two instances). The solution is
// applied through the API first (as installers/test_desktop.py does), so the service uses the
// cache and Redis sees hits. Then, as a learner would: the Redis tab is there for t1-05 (not
// for t1-01); Start; the console answers DBSIZE and INFO keyspace from the server, refuses
// `SET lab-test 1` read-only and shows why, runs it with "allow writes", and `GET lab-test`
// read-only answers "1", which the test also reads from the redis-server process itself (found
// by its working directory under the lab home, its port from its command line, over RESP), and
// an unknown command's error reply shows as an error;
// Run load (the explore profile: the UI offers no rate) fills the four Redis charts from the
// stream's `redis` samples with real figures (hits, a hit ratio, memory against the 2 MiB
// maxmemory, two clients, no writes refused), which INFO stats in the console confirms; Stop
// leaves no redis-server (nor any other process) of that lab home behind; opening t1-01 then
// hides the Redis tab and charts.
//
// Run: npm --prefix ui run build && node ui/tests/redis.mjs (after `cargo build -p sdlab-cli`).
// The lab home is /tmp/sdlab-tests/ui-home, shared with ui/tests/e2e.mjs (run that first, as
// scripts/test.sh does: the kit's crates are compiled once there and in target/sdlab-services,
// so t1-05's build is incremental); t1-05's code, database and Redis are reset at the start of
// every run. Under a minute with a warm home (a cold one builds t1-05's service first). Screenshots: target/ui-artifacts/redis-*.png.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { applySolution, artifacts, chartValues as values, chromiumPath, home, labEnv, labGone, labProcesses, MINUTE, repo, reporter, sdlabBin, serve, stopServe } from './lab.mjs';

const SCENARIO = 't1-05';
const { check, shot, elapsed } = reporter('redis');

/** redis-server's rewritten command line starts with its argv[0]: "/usr/bin/redis-server 127.0.0.1:PORT". */
const redisServers = () => labProcesses().filter((p) => /^(\S*\/)?redis-server /.test(p.cmd));

/** One command to a Redis over RESP, straight to the server (not through the lab). */
function resp(port, args) {
  return new Promise((ok, fail) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setTimeout(5000, () => { socket.destroy(); fail(new Error(`redis on :${port} did not answer in 5 s`)); });
    socket.on('error', fail);
    socket.on('data', (chunk) => {
      data += chunk;
      // Enough for the replies used here: a simple/error/integer line or one bulk string.
      const bulk = /^\$(-?\d+)\r\n/.exec(data);
      if ((bulk && (bulk[1] === '-1' || data.length >= bulk[0].length + Number(bulk[1]) + 2)) || (!data.startsWith('$') && data.endsWith('\r\n'))) {
        socket.end();
        ok(data);
      }
    });
    socket.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  });
}

/** Types `command` in the Redis console and runs it; resolves with the new transcript entry's
 *  reply element's class and text, once the API answered. */
async function redisConsole(page, command) {
  const before = await page.locator('#redis-output > div').count();
  await page.fill('#redis-input', command);
  await page.press('#redis-input', 'Enter');
  await page.waitForFunction((n) => {
    const entry = document.querySelectorAll('#redis-output > div')[n];
    return entry && entry.children[1].textContent !== '…';
  }, before, { timeout: 30_000 });
  return page.evaluate((n) => {
    const entry = document.querySelectorAll('#redis-output > div')[n];
    return { cmd: entry.children[0].textContent, kind: entry.children[1].className, text: entry.children[1].textContent };
  }, before);
}

/** The running lab's exposition for Prometheus, at the port `sdlab prometheus` prints. */
async function labMetrics() {
  const config = execFileSync(sdlabBin, ['prometheus', SCENARIO], { env: labEnv, encoding: 'utf8' });
  const port = /job_name: "sdlab-lab"[\s\S]*?127\.0\.0\.1:(\d+)/.exec(config)?.[1];
  check(port, `sdlab prometheus ${SCENARIO} names the lab's metrics port`);
  return (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
}

async function main() {
  check(existsSync(sdlabBin), `${sdlabBin} exists (cargo build -p sdlab-cli)`);
  check(existsSync(join(repo, 'ui/dist/index.html')), 'ui/dist is built (npm --prefix ui run build)');
  const executablePath = chromiumPath();
  check(executablePath, 'chromium is installed (bash scripts/deps.sh --test)');
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(home, { recursive: true });
  check(redisServers().length === 0, `no redis-server of ${home} runs before the test (${JSON.stringify(redisServers())})`);

  const server = serve();
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  let page = null;
  try {
    const url = await server.url;
    // The broken code, the seeded database and an empty Redis, whatever an earlier run left;
    // then the solution, file by file, as a learner applies it: the service caches in Redis.
    const files = await applySolution(url, SCENARIO);
    check(files.some((f) => f.path === 'deploy/redis.conf'), `the solution is applied (${files.map((f) => f.path).join(', ')})`);

    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    const foreign = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (!['data:', 'blob:'].includes(u.protocol) && u.hostname !== '127.0.0.1') foreign.push(r.url());
    });
    await page.goto(url);

    // Without Redis: no Redis tab (e2e.mjs checks t1-01 further).
    await page.click('#scenarios a[data-id=t1-01]');
    await page.waitForFunction(() => window.sdlab.state.scenario?.id === 't1-01', null, { timeout: 30_000 });
    check(await page.isHidden('#tabs button[data-tab=redis]'), 't1-01 has no Redis tab');

    // With Redis: the tab and its four charts.
    await page.click(`#scenarios a[data-id=${SCENARIO}]`);
    await page.waitForFunction((id) => window.sdlab.state.scenario?.id === id, SCENARIO, { timeout: 30_000 });
    // (The scenario is set before its tabs are drawn: wait for the tab rather than look once.)
    const redisTab = await page.locator('#tabs button[data-tab=redis]').waitFor({ state: 'visible', timeout: 10_000 }).then(() => true, () => false);
    check(redisTab, `${SCENARIO} has the Redis tab`);
    const ids = await page.evaluate(() => window.sdlab.charts.redisIds().filter((id) => document.querySelector(`[data-chart="${id}"]`)));
    check(ids.length === 4, `its four Redis charts are drawn (${ids})`);

    // Start: PostgreSQL (seeded), redis-server, the build, two instances.
    await page.waitForSelector('#status[data-state=stopped]', { timeout: 30_000 });
    await page.click('#btn-start');
    await page.waitForSelector('#status[data-state=running]', { timeout: 6 * MINUTE });
    await shot(page, 'started');
    const servers = redisServers();
    check(servers.length === 1, `one redis-server runs in the lab home: ${JSON.stringify(servers)}`);
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(servers[0].cmd)?.[1]);
    check(port > 0, `its command line names its port (${servers[0].cmd})`);

    // The console, on the real server.
    await page.click('#tabs button[data-tab=redis]');
    check(await page.textContent('#btn-redis') === 'Run (read-only)', 'the console runs read-only by default');
    const dbsize = await redisConsole(page, 'DBSIZE');
    check(dbsize.kind === 'reply' && /^\(integer\) \d+\n$/.test(dbsize.text), `DBSIZE answers an integer (${JSON.stringify(dbsize.text)})`);
    const keyspace = await redisConsole(page, 'INFO keyspace');
    check(keyspace.kind === 'reply' && keyspace.text.includes('# Keyspace'), `INFO keyspace answers the server's section (${JSON.stringify(keyspace.text.slice(0, 80))})`);
    const refused = await redisConsole(page, 'SET lab-test 1');
    check(refused.kind === 'refused' && refused.text.includes('read-only') && refused.text.includes('allow writes'),
      `SET is refused read-only, and the page says how to allow it (${refused.text})`);
    check(await resp(port, ['EXISTS', 'lab-test']) === ':0\r\n', 'the refused SET never reached the server');
    await page.check('#redis-write');
    check(await page.textContent('#btn-redis') === 'Run (writes allowed)', 'the button says writes are allowed');
    const set = await redisConsole(page, 'SET lab-test 1');
    check(set.kind === 'reply' && set.text === 'OK\n' && set.cmd === 'redis (writes allowed)> SET lab-test 1', `with "allow writes" SET answers OK (${JSON.stringify(set)})`);
    await page.uncheck('#redis-write');
    const got = await redisConsole(page, 'GET lab-test');
    check(got.kind === 'reply' && got.text === '"1"\n' && got.cmd === 'redis (read-only)> GET lab-test', `GET lab-test read-only shows 1 (${JSON.stringify(got)})`);
    check(await resp(port, ['GET', 'lab-test']) === '$1\r\n1\r\n', `the redis-server on :${port} holds lab-test = 1`);
    const unknown = await redisConsole(page, 'NOSUCH');
    check(unknown.kind === 'reply-error' && unknown.text.startsWith('(error) ERR unknown command'), `the server's error reply is shown as one (${JSON.stringify(unknown.text)})`);
    await shot(page, 'console');

    // Load from the window: the explore profile (the UI offers no rate; 400 req/s, 30 s).
    await page.click('#tabs button[data-tab=charts]');
    await page.click('#btn-load');
    // Meanwhile the lab this server runs serves its series for Prometheus, the window's load
    // included (`sdlab prometheus` names the port; the dashboards' own test scrapes a terminal's lab).
    await page.waitForFunction(() => window.sdlab.state.job?.kind === 'load' && (window.sdlab.state.job.seconds?.length ?? 0) >= 3, null, { timeout: MINUTE });
    const exported = await labMetrics();
    check(/^sdlab_load_requests_total\{scenario="t1-05"\} [1-9]/m.test(exported), 'the exporter shows the window\'s load (sdlab_load_requests_total)');
    check(/^sdlab_redis_keyspace_hits_total\{scenario="t1-05"\} \d/m.test(exported), 'and Redis INFO (sdlab_redis_keyspace_hits_total)');
    check(/^sdlab_instance_up\{scenario="t1-05",lab_instance="2"\} 1$/m.test(exported), 'and both instances up (sdlab_instance_up)');
    await page.waitForFunction(() => window.sdlab.state.job?.kind === 'load' && window.sdlab.state.job.state !== 'running', null, { timeout: 2 * MINUTE });
    const job = await page.evaluate(() => window.sdlab.state.job);
    check(job.state === 'done', `the load run finished (${job.state} ${job.error ?? ''})`);
    // The last samples of the stream after the load's end.
    await page.waitForTimeout(2000);
    await page.locator('[data-chart="redis-ops"]').scrollIntoViewIfNeeded();
    await shot(page, 'charts');
    const ops = await values(page, 'redis-ops', 1);
    const hits = await values(page, 'redis-ops', 2);
    const misses = await values(page, 'redis-ops', 3);
    const ratio = await values(page, 'redis-ratio', 1);
    const used = await values(page, 'redis-memory', 1);
    const maxmemory = await values(page, 'redis-memory', 2);
    const refusedRate = await values(page, 'redis-pressure', 2);
    const clients = await values(page, 'redis-pressure', 3);
    const max = (xs) => Math.max(0, ...xs);
    check(ops.length >= 20 && max(ops) > 100, `commands/s: ${ops.length} points, up to ${max(ops).toFixed(0)}/s`);
    check(max(hits) > 10 && max(misses) > 0, `hits/s up to ${max(hits).toFixed(0)}, misses/s up to ${max(misses).toFixed(0)}`);
    check(ratio.length > 0 && max(ratio) > 10 && max(ratio) <= 100, `the hit ratio has points, up to ${max(ratio).toFixed(0)} %`);
    check(maxmemory.length > 0 && maxmemory.every((v) => v === 2), `maxmemory is drawn at 2 MiB (${[...new Set(maxmemory)]})`);
    check(max(used) > 0 && max(used) <= 2.5, `used memory has points, up to ${max(used).toFixed(2)} MiB`);
    check(clients.length > 0 && max(clients) >= 2, `clients: up to ${max(clients)} (at least the two instances' connections)`);
    check(refusedRate.every((v) => v === 0), 'no writes refused for memory (the solution evicts: allkeys-lru)');
    // The server's own counters agree: the hits the charts drew were Redis's.
    await page.click('#tabs button[data-tab=redis]');
    const stats = await redisConsole(page, 'INFO stats');
    const serverHits = Number(/keyspace_hits:(\d+)/.exec(stats.text)?.[1]);
    check(serverHits > 0, `INFO stats in the console: keyspace_hits:${serverHits}`);

    // The logs tab lists both instances, and instance 2's lines are its own log file's.
    await page.click('#tabs button[data-tab=logs]');
    const whose = await page.$$eval('#log-process option', (os) => os.map((o) => o.textContent));
    check(JSON.stringify(whose) === '["instance 1","instance 2"]', `the logs tab offers each instance's log (${whose})`);
    await page.selectOption('#log-process', 'instance=2');
    await page.waitForFunction(() => document.querySelectorAll('#logs > *').length > 0, null, { timeout: 10_000 });
    const shownLines = await page.$$eval('#logs > *', (ls) => ls.map((l) => l.title || l.textContent));
    // (A JSON line shows its parts, with the line as written in its title; a text line as written.)
    const logOf = (n) => readFileSync(join(home, 'logs', SCENARIO, `service-${n}.log`), 'utf8');
    const [second, first] = [logOf(2), logOf(1)];
    check(shownLines.every((l) => second.includes(l)) && shownLines.some((l) => !first.includes(l)), `instance 2's log is shown (${shownLines.length} lines, all from service-2.log; first ${JSON.stringify(shownLines[0])})`);
    // Back on the Redis tab, which the scenario switch below expects to leave.
    await page.click('#tabs button[data-tab=redis]');

    // Stop from the window: the lab's redis-server goes, and nothing else of the home stays.
    await page.click('#btn-stop');
    await page.waitForSelector('#status[data-state=stopped]', { timeout: MINUTE });
    await labGone();
    check(redisServers().length === 0, `no redis-server of ${home} is left after Stop (${JSON.stringify(redisServers())})`);
    check(labProcesses().length === 0, `no process of ${home} is left after Stop (${JSON.stringify(labProcesses())})`);
    await shot(page, 'stopped');
    // Leaving t1-05 for a scenario without Redis hides the tab and removes the Redis charts.
    await page.click('#scenarios a[data-id=t1-01]');
    await page.waitForFunction(() => window.sdlab.state.scenario?.id === 't1-01', null, { timeout: 30_000 });
    // The page redraws after the switch: wait for it (bounded) rather than sample one instant.
    const switched = await Promise.all([
      page.locator('#tabs button[data-tab=redis]').waitFor({ state: 'hidden', timeout: 10_000 }),
      page.locator('#tab-charts').waitFor({ state: 'visible', timeout: 10_000 }),
    ]).then(() => true, () => false);
    check(switched, 'leaving t1-05 for t1-01 hides the Redis tab and shows the charts');
    const removed = await page
      .waitForFunction(() => document.querySelectorAll('[data-chart^="redis-"]').length === 0, null, { timeout: 10_000 })
      .then(() => true, () => false);
    check(removed, 'and removes the Redis charts');

    check(foreign.length === 0, `no request left 127.0.0.1 (${foreign.join(', ')})`);
    check(errors.length === 0, `no page errors (${errors.join('; ')})`);
    console.log(`[redis-ui] PASS in ${elapsed()}`);
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
  console.error(`[redis-ui] FAILED after ${elapsed()}; screenshots in ${artifacts}/redis-*.png`);
  process.exit(1);
});
