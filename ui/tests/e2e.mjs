// The browser test: drives a real `sdlab serve` (target/debug/sdlab) in Debian's chromium
// through scenario t1-01, as a learner would. Open it, start, run load and watch the charts
// grow, answer an observation question and see the measured figure, apply the fix in the
// editor, save (rebuild, restart), check -> PASS, break the code and see the compiler's
// diagnostic, keep an unsaved edit across a page reload and a lab restart, reveal the
// solution, reset. Before its own start, the page follows a lab a terminal starts, crashes
// and stops (`sdlab start` beside the server): each change shows within 2 s. The SQL console, the logs and a hint are used on the way. A screenshot of each step goes to target/ui-artifacts/.
//
// Run: npm --prefix ui run build && node ui/tests/e2e.mjs (after `cargo build -p sdlab-cli`).
// The lab home is /tmp/sdlab-tests/ui-home (seeded once, then cached); the learner's code,
// database, progress, history and drafts there are reset at the start of every run.
// Run it alone (scripts/test.sh runs it after nextest): services are built in the shared
// target/sdlab-services, and a test building another version of t1-01's service there at
// the same moment can replace the binary this lab is about to start.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { api, artifacts, chromiumPath, home, labEnv, MINUTE, repo, sdlabBin, serve, stopServe } from './lab.mjs';

const solution = join(repo, 'scenarios/t1-01-diagnosing-failures/solution');

function check(condition, message) {
  if (!condition) throw new Error(`FAILED: ${message}`);
}

let step = 0;
/** The browser page, for a screenshot of the moment a step fails. */
let current = null;
const began = Date.now();
async function shot(page, name) {
  step += 1;
  const file = join(artifacts, `${String(step).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  console.log(`[e2e] ${name} (${file})`);
}

/** `sdlab start <id>` as a terminal runs it, beside the server: `ready` resolves with the
 *  moment it printed `ready <id> <url>` (its lab is up) and that URL. */
function cliStart(id) {
  const child = spawn(sdlabBin, ['start', id], { env: labEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  process.on('exit', () => child.exitCode === null && child.kill('SIGTERM'));
  const exited = new Promise((ok) => child.on('exit', ok));
  const ready = new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = new RegExp(`^ready ${id} (\\S+)$`, 'm').exec(out);
      if (m) ok({ at: Date.now(), url: m[1] });
    });
    child.on('exit', (code) => fail(new Error(`sdlab start ${id} exited (${code}) before it was ready`)));
    // unref: without it this timer kept node alive ~9 minutes after the test passed.
    setTimeout(() => fail(new Error(`sdlab start ${id} was not ready in 10 minutes`)), 10 * MINUTE).unref();
  });
  return { child, ready, exited };
}

/** Waits until `predicate` holds in the page, at most 2 s after `since` (an action outside
 *  the page: the page has to notice it by itself). */
async function within2s(page, since, what, predicate) {
  const left = 2000 - (Date.now() - since);
  check(left > 0, `${what}: no time left to wait (${-left} ms late before waiting)`);
  try {
    await page.waitForFunction(predicate, null, { timeout: left, polling: 50 });
  } catch (e) {
    const status = await page.textContent('#status').catch(() => '?');
    throw new Error(`FAILED: ${what} within 2 s (status line: ${status}): ${e.message}`);
  }
  console.log(`[e2e] ${what}: after ${Date.now() - since} ms`);
}

/** SIGTERM, then wait: serve stops the scenario it started before it exits. */
const points = (page, chart) => page.evaluate((c) => window.sdlab.charts.points(c), chart);
const editorText = (page) => page.evaluate(() => window.sdlab.editor.getValue());

async function openFile(page, path) {
  await page.click('#tabs button[data-tab=code]');
  await page.click(`#file-tree a[data-path="${path}"]`);
  await page.waitForFunction((p) => window.sdlab.code.openPath === p, path);
}

/** Replaces the open file's text the way a paste does (one edit in Monaco's model). */
async function setEditorText(page, text) {
  await page.evaluate((t) => {
    const editor = window.sdlab.editor;
    editor.executeEdits('e2e', [{ range: editor.getModel().getFullModelRange(), text: t }]);
  }, text);
}

async function waitState(page, state, timeout) {
  await page.waitForSelector(`#status[data-state=${state}]`, { timeout });
}

async function main() {
  check(existsSync(sdlabBin), `${sdlabBin} is missing: cargo build -p sdlab-cli first`);
  check(existsSync(join(repo, 'ui/dist/index.html')), 'ui/dist is missing: npm --prefix ui run build first');
  const executablePath = chromiumPath();
  check(executablePath, 'chromium not found: bash scripts/deps.sh --test installs it');
  mkdirSync(artifacts, { recursive: true });
  mkdirSync(home, { recursive: true });
  for (const stale of ['progress.json', 'history', 'drafts']) rmSync(join(home, stale), { recursive: true, force: true });

  let server = serve();
  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  try {
    let url = await server.url;
    // The broken code and the seeded database, whatever an earlier run left.
    await api(url, 'POST', '/scenarios/t1-01/reset', {});

    const page = await browser.newPage({ viewport: { width: 1500, height: 950 } });
    current = page;
    const foreign = [];
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (!['data:', 'blob:'].includes(u.protocol) && u.hostname !== '127.0.0.1') foreign.push(r.url());
    });
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    page.on('dialog', (d) => (d.type() === 'prompt' ? d.accept(page.promptAnswer ?? '') : d.accept()));

    // 1. Open the scenario.
    await page.goto(url);
    await page.click('#scenarios a[data-id=t1-01]');
    await page.waitForSelector('#guide h1');
    check((await page.textContent('#guide')).includes('Diagnosing Failures'), 'the guide is rendered');
    if (!process.env.SDLAB_REPOSITORY) check(await page.isHidden('#codespaces-link'), 'no "Open in Codespaces" link while no repository is configured');
    check(await page.locator('.question[data-qid=observed-p95] textarea').count() === 1, 'the observation question has an answer box');
    // t1-01 has no Redis: no Redis console, no Redis charts (ui/tests/redis.mjs tests them).
    check(await page.isHidden('#tabs button[data-tab=redis]'), 't1-01 has no Redis tab');
    check((await page.evaluate(() => window.sdlab.charts.redisIds())).length === 0, 't1-01 has no Redis charts');
    await shot(page, 'scenario-open');

    // 1b. The page follows the lab: a scenario started, crashed and stopped from a terminal
    // (`sdlab start` and `sdlab stop`, other processes than this server) shows within 2 s of
    // each change, with the buttons this window may use.
    await waitState(page, 'stopped', 10_000);
    const terminal = cliStart('t1-01');
    const ready = await terminal.ready;
    await within2s(page, ready.at, 'the page shows the lab a terminal started as running elsewhere',
      () => document.querySelector('#status').dataset.state === 'running' && document.querySelector('#status').dataset.owner === 'elsewhere');
    const elsewhereText = await page.textContent('#status');
    check(elsewhereText.includes(`pid ${terminal.child.pid}`) && elsewhereText.includes(ready.url), `the status names the terminal's lab and its URL: ${elsewhereText}`);
    for (const b of ['start', 'stop', 'load', 'check', 'reset']) check(!(await page.isEnabled(`#btn-${b}`)), `${b} is disabled while another process runs the lab`);
    await shot(page, 'running-elsewhere');
    const runState = JSON.parse(readFileSync(join(home, 'run/t1-01.json'), 'utf8'));
    process.kill(runState.services[0].pid, 'SIGKILL');
    const killedAt = Date.now();
    await within2s(page, killedAt, 'the page shows the crash of the terminal\'s service',
      () => document.querySelector('#status').dataset.state === 'failed' && /exited/.test(document.querySelector('#status').textContent));
    await shot(page, 'crashed-elsewhere');
    execFileSync(sdlabBin, ['stop', 't1-01'], { env: labEnv, stdio: ['ignore', 'ignore', 'inherit'] });
    const stoppedAt = Date.now();
    await within2s(page, stoppedAt, 'the page shows the lab stopped from the terminal',
      () => document.querySelector('#status').dataset.state === 'stopped' && !document.querySelector('#btn-start').disabled);
    await terminal.exited;

    // 2. Start: database, build, service.
    await page.click('#btn-start');
    await page.waitForSelector('#status[data-state=starting]', { timeout: 30_000 }).catch(() => {});
    await waitState(page, 'running', 10 * MINUTE);
    await shot(page, 'started');

    // 3. Run load: the charts' series grow while it runs.
    await page.click('#btn-load');
    await page.waitForFunction(() => window.sdlab.charts.points('rps') >= 3, null, { timeout: MINUTE });
    const early = await points(page, 'rps');
    await page.waitForFunction((n) => window.sdlab.charts.points('rps') >= n + 3, early, { timeout: MINUTE });
    await shot(page, 'load-charts-growing');
    await page.waitForFunction(() => window.sdlab.state.job?.state === 'done', null, { timeout: 2 * MINUTE });
    const badge = await page.textContent('#instances .instance[data-instance="1"]');
    check(/instance 1 :\d+ up/.test(badge ?? ''), `instance 1 is shown up (${badge})`);
    // The scenario's own panels ([[panels]] in scenario.toml) fill from the service's /metrics.
    const panelIds = await page.evaluate(() => window.sdlab.charts.panelIds());
    check(panelIds.length >= 1, `t1-01's panels are drawn (${panelIds.length})`);
    for (const id of panelIds) {
      const n = await points(page, id);
      check(n > 0, `panel ${id} has data (${n} points)`);
    }
    for (const chart of ['rps', 'latency', 'errors', 'pg', 'pool', 'cpu']) {
      const n = await points(page, chart);
      check(n > 0, `chart ${chart} has data (${n} points)`);
    }
    await shot(page, 'load-done');

    // 4. An observation question: the answer beside the figure this run measured.
    await page.fill('.question[data-qid=observed-p95] textarea', 'I guessed 100 ms');
    await page.click('.question[data-qid=observed-p95] button');
    const measured = page.locator('.question[data-qid=observed-p95] .q-measured');
    await measured.waitFor({ state: 'visible' });
    const line = await measured.textContent();
    check(/You wrote I guessed 100 ms; your last load run measured p95 = [\d.]+ (ms|s)\./.test(line), `measured figure shown: ${line}`);
    const history = await api(url, 'GET', '/scenarios/t1-01/history');
    const p95 = history.at(-1).summary.latency.p95_ms;
    const shown = Number(/p95 = ([\d.]+)/.exec(line)[1]) * (line.includes(' ms.') ? 1 : 1000);
    check(Math.abs(shown - p95) <= Math.max(1, p95 * 0.01), `the figure is the run's own p95 (${shown} vs ${p95} ms)`);
    check(await page.locator('.question[data-qid=observed-p95] details.q-ref').isVisible(), 'the reference answer appears (folded) once answered');
    await page.locator('.question[data-qid=observed-p95]').scrollIntoViewIfNeeded();
    await shot(page, 'question-answered');

    // 5. Apply the fix in the editor: the solution's changed files, and its new migration.
    for (const path of ['src/app.rs', 'src/handlers.rs', 'src/main.rs']) {
      await openFile(page, path);
      await setEditorText(page, readFileSync(join(solution, path), 'utf8'));
    }
    page.promptAnswer = 'migrations/0001_feed_index.sql';
    await page.click('#btn-new');
    await page.waitForFunction(() => window.sdlab.code.openPath === 'migrations/0001_feed_index.sql');
    await setEditorText(page, readFileSync(join(solution, 'migrations/0001_feed_index.sql'), 'utf8'));
    await shot(page, 'fix-in-editor');
    await page.click('#btn-save');
    await waitState(page, 'starting', MINUTE).catch(() => {});
    await waitState(page, 'running', 10 * MINUTE);
    check(!(await page.isEnabled('#btn-save')), 'everything is saved');
    await shot(page, 'rebuilt-and-running');

    // 6. Check my fix: PASS.
    await page.click('#btn-check');
    await page.waitForSelector('.verdict', { timeout: 5 * MINUTE });
    const table = await page.textContent('#check-result');
    check(await page.locator('.verdict.pass').count() === 1, `the check passes:\n${table}`);
    await shot(page, 'check-pass');

    // The diagnosis tools on the fixed service: the SQL console (read-only), logs, a hint.
    await page.click('#tabs button[data-tab=sql]');
    await page.fill('#sql-input', 'EXPLAIN SELECT id FROM posts ORDER BY created_at DESC LIMIT 20');
    await page.click('#btn-sql');
    await page.waitForFunction(() => document.querySelector('#sql-output table')?.textContent.includes('Index Scan'), null, { timeout: 30_000 });
    await page.fill('#sql-input', 'DELETE FROM posts');
    await page.click('#btn-sql');
    await page.waitForFunction(() => /read-only/.test(document.querySelector('#sql-output').textContent), null, { timeout: 30_000 });
    await page.click('#tabs button[data-tab=logs]');
    await page.waitForFunction(() => document.querySelector('#logs').textContent.trim().length > 0, null, { timeout: 30_000 });
    // The request-ID filter: t1-01 logs text lines without request IDs, so an ID shows
    // nothing, and "All lines" brings the log back.
    await page.fill('#log-request', 'no-such-request');
    await page.press('#log-request', 'Enter');
    await page.waitForFunction(() => document.querySelector('#logs').textContent.trim() === '', null, { timeout: 10_000 });
    await page.waitForTimeout(1500);
    check((await page.textContent('#logs')).trim() === '', 'no line of another request shows');
    await page.click('#btn-log-all');
    await page.waitForFunction(() => document.querySelector('#logs').textContent.trim().length > 0, null, { timeout: 30_000 });
    await page.click('#btn-hint');
    await page.waitForSelector('#hints .hint-box');
    await shot(page, 'logs-and-hint');

    // 7. Break the code: the compiler's diagnostic, inline and below the editor.
    await openFile(page, 'src/handlers.rs');
    const fixed = await editorText(page);
    await setEditorText(page, `${fixed}\nfn broken() -> u32 { "not a number" }\n`);
    await page.click('#btn-save');
    await waitState(page, 'failed', 10 * MINUTE);
    const diagnostics = await page.textContent('#diagnostics');
    check(/error\[E0308\]/.test(diagnostics) && diagnostics.includes('src/handlers.rs'), `the diagnostic names the error and file:\n${diagnostics}`);
    await page.waitForFunction(() => window.sdlab.code.markers().some((m) => m.severity === 8));
    await page.waitForSelector('#editor .squiggly-error');
    await shot(page, 'compile-error');

    // 8. Unsaved edits survive a page reload, then a restart of the lab.
    await openFile(page, 'src/models.rs');
    const unsaved = `// an unsaved thought ${Date.now()}\n${await editorText(page)}`;
    await setEditorText(page, unsaved);
    await page.waitForTimeout(1500); // the draft is sent half a second after the last edit
    await page.reload();
    await page.waitForSelector('#guide h1');
    await openFile(page, 'src/models.rs');
    check((await editorText(page)) === unsaved, 'the unsaved edit survived the reload');
    check((await page.textContent('#editor-state')).includes('unsaved'), 'it is still marked unsaved');
    await shot(page, 'draft-after-reload');

    await stopServe(server.child);
    server = serve();
    url = await server.url;
    await page.goto(url);
    await page.waitForSelector('#guide h1');
    await openFile(page, 'src/models.rs');
    check((await editorText(page)) === unsaved, 'the unsaved edit survived a restart of the lab');
    await openFile(page, 'src/handlers.rs');
    check((await editorText(page)).includes('fn broken()'), 'the saved edit survived a restart of the lab');
    // The charts open on the last recorded load run, dashed, as the "before" to compare with.
    const before = await page.evaluate(() => window.sdlab.charts.points('rps', 3));
    check(before >= 20, `the previous load run is overlaid after a lab restart (${before} points)`);
    const answer = await page.inputValue('.question[data-qid=observed-p95] textarea');
    check(answer === 'I guessed 100 ms', 'the answer survived a restart of the lab');
    await shot(page, 'after-lab-restart');

    // 9. Reveal the solution (after a confirmation): notes and a side-by-side diff.
    await page.click('#btn-reveal');
    await page.waitForSelector('#solution-notes h1, #solution-notes h2', { state: 'attached', timeout: 30_000 });
    await page.waitForSelector('#diff .monaco-diff-editor');
    await page.waitForSelector('#diff .monaco-diff-editor .editor.original .view-line');
    await shot(page, 'solution-diff');

    // 10. Reset: the broken code again (the learner's copy goes to a backup).
    await page.click('#btn-reset');
    await page.waitForFunction(() => /^Reset\./.test(document.querySelector('#status').textContent), null, { timeout: 2 * MINUTE });
    const broken = (path) => readFileSync(join(repo, 'scenarios/t1-01-diagnosing-failures/service', path), 'utf8');
    await openFile(page, 'src/handlers.rs');
    check((await editorText(page)) === broken('src/handlers.rs'), 'reset restored the broken handlers.rs');
    await openFile(page, 'src/models.rs');
    check((await editorText(page)) === broken('src/models.rs'), 'reset dropped the unsaved draft of models.rs');
    await shot(page, 'after-reset');

    check(foreign.length === 0, `no request left 127.0.0.1: ${foreign.join(', ')}`);
    console.log(`[e2e] PASS in ${Math.round((Date.now() - began) / 1000)} s`);
  } catch (e) {
    if (current) await shot(current, 'FAILED').catch(() => {});
    throw e;
  } finally {
    await browser.close();
    await stopServe(server.child);
  }
}

main().catch((e) => {
  console.error(e);
  console.error(`[e2e] FAILED after step ${step}; screenshots so far in ${artifacts}`);
  process.exit(1);
});
