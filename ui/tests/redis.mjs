// The browser test of the page's Redis parts, on a stand-in API: Debian's chromium drives the
// built UI (ui/dist) served by a small node server that answers the few endpoints the page
// calls, with a scenario that has Redis (t2-96) and one without (t1-01). It checks what the
// page does with the API's answers: the Redis tab only for a scenario with Redis, the console
// read-only by default (a refusal shown as such, the same command sent again with "allow
// writes" carrying "write": true), replies rendered as text, and the four Redis charts filled
// from the metrics stream's `redis` samples (the refused-writes rate from its counter). The
// API's side of the contract (the route, the read-only rule on a real redis-server, the
// samples' JSON) is tested in engine/tests/it/api.rs and engine/src/redis_console.rs; no lab
// runs here, so it takes seconds. Screenshots: target/ui-artifacts/redis-*.png.
//
// Run: npm --prefix ui run build && node ui/tests/redis.mjs

import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const dist = join(repo, 'ui/dist');
const TOKEN = 'redis-ui-test-token-0123456789';

function check(condition, message) {
  if (!condition) throw new Error(`FAILED: ${message}`);
  console.log(`[redis-ui] ok: ${message}`);
}

function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  try { return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim(); } catch { return null; }
}

const progress = { checks_run: 0, passed: false, solution_revealed: false, hints_shown: 0, answers: {} };
const summary = (id, title) => ({ id, title, track: 1, stage: 'walking', minutes: 30, concepts: [], progress });
const detail = (id, title, redis) => ({ ...summary(id, title), guide: `# ${title}\n\nA stand-in scenario.\n`, hints: 1, instances: 1, postgres: true, redis, profiles: ['explore'], questions: [], panels: [] });
const SCENARIOS = { 't2-96': detail('t2-96', 'With Redis', true), 't1-01': detail('t1-01', 'Without Redis', false) };

/** Every /redis request the page sent, as parsed JSON. */
const redisRequests = [];

/** One second of Redis as the API streams it (engine/src/api/model.rs, RedisSampleView). */
function redisSample(n) {
  return {
    hits_per_second: n === 0 ? null : 90,
    misses_per_second: n === 0 ? null : 10,
    hit_ratio: n === 0 ? null : 0.9,
    used_memory: 1.5 * 1024 * 1024,
    maxmemory: 2 * 1024 * 1024,
    evicted_per_second: n === 0 ? null : 4,
    rejected_writes: 3 * n, // 3 refused writes a second (`at` is n)
    ops_per_second: 150,
    clients: 2,
  };
}

function api(req, res, body) {
  const url = new URL(req.url, 'http://x');
  const json = (status, value) => {
    res.writeHead(status, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const authorized = req.headers.authorization === `Bearer ${TOKEN}` || url.searchParams.get('token') === TOKEN;
  if (!authorized) return json(401, { error: 'token' });
  const path = url.pathname.replace(/^\/api/, '');
  if (path === '/doctor') return json(200, []);
  if (path === '/scenarios') return json(200, Object.values(SCENARIOS).map(({ id, title }) => summary(id, title)));
  const m = /^\/scenarios\/([^/]+)(\/.*)?$/.exec(path);
  const scenario = m && SCENARIOS[m[1]];
  if (!scenario) return json(404, { error: `no ${path}` });
  switch (m[2] ?? '') {
    case '': return json(200, scenario);
    case '/history': return json(200, []);
    case '/files': return json(200, { root: '/tmp/x', entries: [] });
    case '/job': return json(404, { error: 'no job' });
    case '/status': return json(200, { scenario: scenario.id, state: 'running', url: 'http://127.0.0.1:1', urls: ['http://127.0.0.1:1'], entry: 'http://127.0.0.1:1', cpu_limit: null, events: [] });
    case '/metrics/stream': {
      res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
      let n = 0;
      const send = () => {
        const sample = { at: n, services: [{ instance: 1, port: 1, up: true, down_reason: null, metrics: {}, cpu: 0.1 }], postgres: null, redis: scenario.redis ? redisSample(n) : null };
        res.write(`event: sample\ndata: ${JSON.stringify(sample)}\n\n`);
        n += 1;
      };
      send();
      // Samples come faster than the real 1 Hz (`at` still counts seconds): the test is quick.
      const timer = setInterval(send, 150);
      res.on('close', () => clearInterval(timer));
      return;
    }
    case '/redis': {
      const request = JSON.parse(body);
      redisRequests.push(request);
      if (!scenario.redis) return json(400, { error: `${scenario.id} has no Redis in its topology` });
      if (/^set /i.test(request.command) && !request.write) {
        return json(400, { error: '`SET` writes (so says the server\'s COMMAND INFO), and the console is read-only. Send it as a write ("write": true; in the UI, tick "allow writes") to run it.' });
      }
      const reply = /^set /i.test(request.command) ? 'OK\n' : /^get /i.test(request.command) ? '"v 1"\n' : '(error) ERR unknown command \'NOSUCH\'\n';
      return json(200, { read_only: !request.write, reply });
    }
    default: return json(404, { error: `no ${path}` });
  }
}

const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.ttf': 'font/ttf', '.svg': 'image/svg+xml' };

const server = createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    if (req.url.startsWith('/api/')) return api(req, res, body);
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    const file = join(dist, path === '/' ? 'index.html' : path);
    if (!file.startsWith(dist) || !existsSync(file)) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
});

async function main() {
  check(existsSync(join(dist, 'index.html')), 'ui/dist is built (npm --prefix ui run build)');
  const executablePath = chromiumPath();
  check(executablePath, 'chromium is installed (bash scripts/deps.sh --test)');
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${server.address().port}/#token=${TOKEN}`;
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.evaluate(() => localStorage.clear());

    // Without Redis: no Redis tab, no Redis charts.
    await page.click('#scenarios a[data-id=t1-01]');
    await page.waitForFunction(() => window.sdlab.state.scenario?.id === 't1-01');
    check(await page.isHidden('#tabs button[data-tab=redis]'), 'a scenario without Redis has no Redis tab');
    check((await page.evaluate(() => window.sdlab.charts.redisIds())).length === 0, 'nor Redis charts');

    // With Redis: the tab and four charts, filled from the stream.
    await page.click('#scenarios a[data-id=t2-96]');
    await page.waitForFunction(() => window.sdlab.state.scenario?.id === 't2-96');
    check(await page.isVisible('#tabs button[data-tab=redis]'), 'a scenario with Redis has the Redis tab');
    const ids = await page.evaluate(() => window.sdlab.charts.redisIds().filter((id) => document.querySelector(`[data-chart="${id}"]`)));
    check(ids.length === 4, `its four Redis charts are drawn (${ids})`);
    await page.waitForFunction(() => window.sdlab.charts.points('redis-ops', 1) >= 3, null, { timeout: 10_000 });
    const points = (id, series) => page.evaluate(([c, s]) => window.sdlab.charts.points(c, s), [id, series]);
    const last = (id, series) => page.evaluate(([c, s]) => {
      const values = window.sdlab.charts.values(c, s);
      return values[values.length - 1];
    }, [id, series]);
    check(await last('redis-ops', 1) === 150 && await last('redis-ops', 2) === 90 && await last('redis-ops', 3) === 10, 'commands/s: ops, hits, misses');
    check(await last('redis-ratio', 1) === 90, 'the hit ratio in percent');
    check(await last('redis-memory', 1) === 1.5 && await last('redis-memory', 2) === 2, 'memory against maxmemory in MiB');
    check(await last('redis-pressure', 2) === 3 && await last('redis-pressure', 1) === 4 && await last('redis-pressure', 3) === 2,
      'evictions/s, refused writes/s from the counter (3 more per second of `at`), clients');
    check(await points('redis-pressure', 2) < await points('redis-pressure', 3), 'the refused-writes rate starts at the second sample');

    mkdirSync(join(repo, 'target/ui-artifacts'), { recursive: true });
    await page.locator('[data-chart="redis-ops"]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(repo, 'target/ui-artifacts/redis-charts.png') });

    // The console: read-only by default; a refusal is shown as one; allow writes sends it as a write.
    await page.click('#tabs button[data-tab=redis]');
    check(await page.textContent('#btn-redis') === 'Run (read-only)', 'the console runs read-only by default');
    await page.fill('#redis-input', 'GET "a key"');
    await page.press('#redis-input', 'Enter');
    await page.waitForFunction(() => document.querySelector('#redis-output .reply')?.textContent === '"v 1"\n');
    await page.fill('#redis-input', 'SET "a key" v');
    await page.click('#btn-redis');
    await page.waitForSelector('#redis-output .refused');
    check((await page.textContent('#redis-output .refused')).includes('allow writes'), 'a write is refused and the page says how to allow it');
    await page.check('#redis-write');
    check(await page.textContent('#btn-redis') === 'Run (writes allowed)', 'the button says writes are allowed');
    await page.click('#btn-redis');
    await page.waitForFunction(() => document.querySelectorAll('#redis-output .reply').length === 2);
    await page.uncheck('#redis-write');
    await page.fill('#redis-input', 'NOSUCH');
    await page.click('#btn-redis');
    await page.waitForSelector('#redis-output .reply-error');
    check(JSON.stringify(redisRequests) === JSON.stringify([
      { command: 'GET "a key"', write: false },
      { command: 'SET "a key" v', write: false },
      { command: 'SET "a key" v', write: true },
      { command: 'NOSUCH', write: false },
    ]), `the page sent each command with its mode: ${JSON.stringify(redisRequests)}`);
    const transcript = await page.textContent('#redis-output');
    check(transcript.includes('redis (read-only)> GET "a key"') && transcript.includes('redis (writes allowed)> SET "a key" v'), 'the transcript names each command and its mode');
    await page.screenshot({ path: join(repo, 'target/ui-artifacts/redis-console.png') });

    // Back to a scenario without Redis: the tab goes, and the page is on the charts.
    await page.click('#scenarios a[data-id=t1-01]');
    await page.waitForFunction(() => window.sdlab.state.scenario?.id === 't1-01');
    check(await page.isHidden('#tabs button[data-tab=redis]') && await page.isVisible('#tab-charts'), 'leaving it hides the Redis tab and shows the charts');
    check((await page.evaluate(() => document.querySelectorAll('[data-chart^="redis-"]').length)) === 0, 'and removes the Redis charts');
    check(errors.length === 0, `no page errors (${errors.join('; ')})`);
    console.log('[redis-ui] PASS');
  } finally {
    await browser.close();
    server.close();
    server.closeAllConnections?.();
  }
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
