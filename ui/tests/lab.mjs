// What the browser tests share: where the lab and its artifacts are, Debian's chromium, a real
// `sdlab serve` on the tests' lab home, the lab's HTTP API with its token, a scenario's
// solution applied through it, the lab home's processes, a chart's values, and the tests'
// check/screenshot/elapsed lines. Used by e2e.mjs (t1-01), redis.mjs (t1-05) and replica.mjs
// (t1-08).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const home =
  process.env.SDLAB_E2E_HOME ?? `${process.env.SDLAB_TESTS_DIR ?? '/tmp/sdlab-tests'}/ui-home`;
export const artifacts = join(repo, 'target/ui-artifacts');
export const sdlabBin = join(repo, 'target/debug/sdlab');
export const MINUTE = 60_000;

/** The lab's environment, shared by `sdlab serve` and a terminal's `sdlab start`. */
export const labEnv = { ...process.env, SDLAB_HOME: home, SDLAB_ROOT: repo, SDLAB_TARGET_DIR: join(repo, 'target/sdlab-services'), SDLAB_UI_DIR: join(repo, 'ui/dist') };

export function chromiumPath() {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  try { return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], { encoding: 'utf8' }).trim(); } catch { return null; }
}

/** Starts `sdlab serve`; `url` resolves with the URL it prints (token in the fragment). */
export function serve() {
  const child = spawn(sdlabBin, ['serve'], { env: labEnv, stdio: ['ignore', 'pipe', 'inherit'] });
  // Whatever ends the test (an exception, Ctrl-C) ends the lab too; the lab's own children
  // (PostgreSQL, redis-server, the instances) die with it (PR_SET_PDEATHSIG).
  const kill = () => child.exitCode === null && child.kill('SIGTERM');
  process.on('exit', kill);
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => { kill(); process.exit(130); });
  const url = new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      const m = /serving (http:\/\/127\.0\.0\.1:\d+\/#token=[0-9a-f]+)/.exec(out);
      if (m) ok(m[1]);
    });
    child.on('exit', (code) => fail(new Error(`sdlab serve exited (${code}) before it served`)));
    // unref: a deadline must not keep the test's process alive after it passed.
    setTimeout(() => fail(new Error('sdlab serve printed no URL in 30 s')), 30_000).unref();
  });
  return { child, url };
}

/** SIGTERM, then wait: serve stops the scenario it started before it exits. */
export async function stopServe(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((ok) => child.on('exit', ok));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((ok) => setTimeout(ok, MINUTE).unref())]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** One call to the lab's API with the token from `url`: JSON in and out, or text with `raw`
 *  (a file's content). A status that is not 2xx fails the test with the answer. */
export async function api(url, method, path, body, raw = false) {
  const base = new URL(url);
  const token = new URLSearchParams(base.hash.slice(1)).get('token');
  const response = await fetch(`${base.origin}/api${path}`, {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': raw ? 'text/plain' : 'application/json' },
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(2 * MINUTE),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`FAILED: ${method} ${path}: ${response.status} ${text}`);
  return text && !raw ? JSON.parse(text) : text;
}

/** A test's report lines, each prefixed with `tag`: `check` fails the test with the message
 *  when the condition is false and prints it otherwise; `shot` saves a screenshot as
 *  `<tag>-<name>.png` under the artifacts; `elapsed` is the time since the test began. */
export function reporter(tag) {
  const began = Date.now();
  const elapsed = () => `${Math.round((Date.now() - began) / 1000)} s`;
  const check = (condition, message) => {
    if (!condition) throw new Error(`FAILED: ${message}`);
    console.log(`[${tag}-ui] ok: ${message}`);
  };
  const shot = async (page, name) => {
    const file = join(artifacts, `${tag}-${name}.png`);
    await page.screenshot({ path: file });
    console.log(`[${tag}-ui] ${name} at ${elapsed()} (${file})`);
  };
  return { check, shot, elapsed };
}

/** The broken code and the seeded database of `scenario`, whatever an earlier run left; then
 *  its solution, file by file, as a learner applies it. Returns the files written. */
export async function applySolution(url, scenario) {
  await api(url, 'POST', `/scenarios/${scenario}/reset`, {});
  const solution = await api(url, 'POST', `/scenarios/${scenario}/solution`, { confirm: true });
  const files = solution.files.filter((f) => !f.path.endsWith('.md'));
  for (const f of files) await api(url, 'PUT', `/scenarios/${scenario}/files/${f.path}`, f.content, true);
  return files;
}

/** The lab home's processes: those naming it on their command line (PostgreSQL's -D, the
 *  instances' binaries) and those working in it: redis-server rewrites its command line to
 *  "/usr/bin/redis-server 127.0.0.1:PORT" but runs in <home>/run/redis-... (as installers/test_desktop.py). */
export function labProcesses() {
  const found = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmd;
    let cwd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`).toString().replaceAll('\0', ' ').trim(); } catch { continue; }
    try { cwd = readlinkSync(`/proc/${pid}/cwd`); } catch { /* another user's, or gone */ }
    if ((cmd.includes(home) || cwd.startsWith(`${home}/`)) && Number(pid) !== process.pid) found.push({ pid: Number(pid), cmd, cwd });
  }
  return found;
}

/** Waits (bounded) until no process of the lab home is left, after a Stop. */
export async function labGone(timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (labProcesses().length > 0 && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 250));
}

/** The drawn values of a series of the page's chart `id` (gaps left out). */
export const chartValues = (page, id, series) => page.evaluate(([c, s]) => window.sdlab.charts.values(c, s).filter((v) => v !== null && v !== undefined), [id, series]);
