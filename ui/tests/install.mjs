// The two commands to the lab, and the Codespaces path, as a new user meets them: in a fresh
// home on this machine (there is no Docker engine here, so the image's steps run directly).
// 1. The Codespaces image: every step of .devcontainer/Dockerfile (COPY, ENV, RUN; USER and
//    FROM noted), which runs the same scripts/deps.sh and scripts/node.sh as a fresh machine.
// 2. t1-01's postCreateCommand from its devcontainer.json: ./install.sh (sdlab linked, the web
//    UI built or found up to date, the scenario's service prebuilt).
// 3. `sdlab` alone, as README's Start says: with a display and xdg-open it serves the lab and
//    hands the browser the page; chromium opens what it was handed and the lab's UI shows.
// 4. t1-01's postStartCommand (.devcontainer/serve.sh): the address it writes opens t1-01's
//    guide; the solution is applied through that lab's API, the scenario starts, and the check
//    clicked in the page passes; a file saved outside the page (as VS Code saves it) rebuilds
//    and restarts the service, and the page follows. Nothing of the fresh home is left running.
// Shortcuts, for CI's time and nothing else: SDLAB_INSTALL_PROFILE=debug (install.sh reuses
// the suite's build of sdlab), and SDLAB_TARGET_DIR=target/sdlab-services (the dependencies the
// browser tests compiled in the lab's profile; the kit and the service still compile here).
//   node ui/tests/install.mjs   (after cargo build -p sdlab-cli and bash scripts/build-ui.sh)

import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import { api, applySolution, artifacts, chromiumPath, MINUTE, repo, reporter } from './lab.mjs';

const { check, shot, elapsed } = reporter('install');
const root = `${process.env.SDLAB_TESTS_DIR ?? '/tmp/sdlab-tests'}/fresh`;
const HOME = join(root, 'home');
const labHome = join(root, 'lab');
const SCENARIO = 't1-01';

/** A fresh user's environment: its own HOME, none of the suite's SDLAB_* settings. */
function freshEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SDLAB_') && k !== 'XDG_DATA_HOME') env[k] = v;
  // As root the lab keeps its data in /var/lib/sdlab (PostgreSQL runs as nobody, who cannot
  // enter root's home): that is the machine's, not fresh, so a fresh folder stands for it.
  const root_ = process.getuid() === 0 ? { SDLAB_HOME: labHome } : {};
  return {
    ...env,
    ...root_,
    HOME,
    // Rust as the image installs it for its user; here, the machine's own.
    CARGO_HOME: process.env.CARGO_HOME ?? join(process.env.HOME, '.cargo'),
    RUSTUP_HOME: process.env.RUSTUP_HOME ?? join(process.env.HOME, '.rustup'),
    SDLAB_INSTALL_PROFILE: 'debug',
    SDLAB_BIN_DIR: join(HOME, '.local/bin'),
    SDLAB_TARGET_DIR: join(repo, 'target/sdlab-services'),
    ...extra,
  };
}

/** Runs a shell command to its end, its output shown; fails the test on a non-zero exit. */
function sh(what, command, env, cwd = repo) {
  console.log(`[install-ui] $ ${command}`);
  try {
    execFileSync('bash', ['-euo', 'pipefail', '-c', command], { cwd, env, stdio: 'inherit', timeout: 15 * MINUTE });
  } catch (e) {
    throw new Error(`FAILED: ${what}: \`${command}\` exited ${e.status ?? e.signal}`);
  }
  check(true, what);
}

/** The Dockerfile's steps, in order, here: COPY into a folder under the test's root (the
 *  image's absolute paths mapped there), ENV into the environment, RUN through bash. */
function runDockerfile(env) {
  const file = join(repo, '.devcontainer/Dockerfile');
  const lines = readFileSync(file, 'utf8').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const image = join(root, 'image');
  const mapped = (p) => (p.startsWith('/home/vscode') ? p.replace('/home/vscode', HOME) : join(image, p));
  const copied = new Map();
  let runs = 0;
  for (const line of lines) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    switch (instruction.toUpperCase()) {
      case 'FROM': console.log(`[install-ui] FROM ${args}: this machine stands for the image`); break;
      case 'USER': console.log(`[install-ui] USER ${args}: steps run as this test's user`); break;
      case 'COPY': {
        const parts = rest.filter((p) => !p.startsWith('--'));
        const dest = parts.pop();
        const target = mapped(dest);
        mkdirSync(target, { recursive: true });
        for (const src of parts) cpSync(join(repo, src), join(target, src.split('/').pop()));
        copied.set(dest.replace(/\/$/, ''), target);
        break;
      }
      case 'ENV': {
        const m = /^(\w+)[= ](.*)$/.exec(args);
        let value = m[2].replaceAll('/home/vscode', HOME);
        value = value.replace(/\$\{?(\w+)\}?/g, (_, name) => env[name] ?? '');
        env[m[1]] = value;
        break;
      }
      case 'RUN': {
        let command = args;
        for (const [dest, target] of copied) command = command.replaceAll(dest, target);
        sh(`the image's step: ${args}`, command, env);
        runs += 1;
        break;
      }
      case 'ARG': case 'LABEL': case 'WORKDIR': break;
      default: throw new Error(`FAILED: the Dockerfile uses ${instruction}, which this test does not run: teach it`);
    }
  }
  check(runs >= 2, `the Dockerfile's install steps ran (${runs} RUN steps)`);
}

function freePort() {
  return new Promise((ok) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

/** The fresh home's processes (PostgreSQL's -D, the instances, sdlab serve's cwd...). */
function freshProcesses() {
  const out = execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(root) && !l.includes('ps -eo'));
}

async function waitFor(what, predicate, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`FAILED: ${what} within ${timeoutMs / 1000} s`);
    await new Promise((ok) => setTimeout(ok, 200));
  }
}

async function main() {
  const executablePath = chromiumPath();
  check(executablePath, 'chromium is installed (bash scripts/deps.sh --test)');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(HOME, { recursive: true });
  mkdirSync(artifacts, { recursive: true });
  const env = freshEnv();

  // 1 and 2: the image, then postCreate, as Codespaces runs them (from the repository's root).
  runDockerfile(env);
  const config = JSON.parse(readFileSync(join(repo, `.devcontainer/${SCENARIO}/devcontainer.json`), 'utf8'));
  sh('postCreateCommand: install.sh', config.postCreateCommand, env);
  const linked = join(HOME, '.local/bin/sdlab');
  check(existsSync(linked), `install.sh linked sdlab into the fresh home (${linked})`);
  check(existsSync(join(repo, 'ui/dist/index.html')), 'the web UI is built (ui/dist)');

  const browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
  try {
    // 3. `sdlab`, with a display and an xdg-open that records what it was handed.
    const fakeBin = join(root, 'bin');
    const handed = join(root, 'xdg-open-argument');
    mkdirSync(fakeBin, { recursive: true });
    writeFileSync(join(fakeBin, 'xdg-open'), `#!/bin/sh\nprintf '%s' "$1" > '${handed}'\n`);
    chmodSync(join(fakeBin, 'xdg-open'), 0o755);
    const openEnv = { ...env, DISPLAY: ':99', PATH: `${fakeBin}:${dirname(linked)}:${env.PATH}` };
    const lab = spawn('sdlab', [], { env: openEnv, cwd: HOME, stdio: ['ignore', 'pipe', 'pipe'] });
    let said = '';
    lab.stdout.on('data', (c) => { said += c; });
    lab.stderr.on('data', (c) => { said += c; });
    const stop = () => lab.exitCode === null && lab.kill('SIGINT');
    process.on('exit', stop);
    const file = await waitFor('`sdlab` hands the browser a page', () => existsSync(handed) && readFileSync(handed, 'utf8'), 60_000)
      .catch((e) => { throw new Error(`${e.message}; sdlab said:\n${said}`); });
    check(said.includes('Opening the lab in your browser'), `sdlab chose the browser (no desktop app here): ${JSON.stringify(said.split('\n')[0])}`);
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
    await page.goto(`file://${file}`);
    await page.waitForSelector(`#scenarios a[data-id=${SCENARIO}]`, { timeout: 30_000 });
    check(new URL(page.url()).hostname === '127.0.0.1', `the page it handed over leads to the lab (${new URL(page.url()).origin})`);
    check((await page.locator('#scenarios a[data-id]').count()) >= 8, 'the lab\'s UI lists the scenarios');
    await shot(page, 'sdlab-opened');
    await page.close();
    const exited = new Promise((ok) => lab.on('exit', ok));
    lab.kill('SIGINT');
    await Promise.race([exited, new Promise((ok) => setTimeout(ok, 30_000).unref())]);
    check(lab.exitCode !== null || lab.signalCode !== null, 'Ctrl-C stops `sdlab`');

    // 4. postStart: serve.sh on a free port, the page at the address it writes.
    const port = await freePort();
    const urlFile = join(root, 'sdlab-url');
    const pidFile = join(root, 'sdlab-serve.pid');
    const serveEnv = { ...env, SDLAB_PORT: String(port), SDLAB_URL_FILE: urlFile, SDLAB_SERVE_LOG: join(root, 'serve.log'), SDLAB_SERVE_PID_FILE: pidFile, SDLAB_REPOSITORY: 'example/system-design-lab' };
    sh('postStartCommand: serve.sh', config.postStartCommand, serveEnv);
    const url = readFileSync(urlFile, 'utf8').trim();
    check(url.startsWith(`http://127.0.0.1:${port}/#token=`) && url.endsWith(`&scenario=${SCENARIO}`), `serve.sh wrote the page's address (${url.replace(/token=\w+/, 'token=…')})`);
    const servePid = Number(readFileSync(pidFile, 'utf8'));
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
      await page.goto(url);
      await page.waitForFunction((id) => window.sdlab?.state?.scenario?.id === id, SCENARIO, { timeout: 30_000 });
      check((await page.textContent('#guide')).includes('Diagnosing Failures'), 'the address opens t1-01\'s guide');
      // With the repository configured (SDLAB_REPOSITORY), the scenario's own codespace link.
      const link = await page.getAttribute('#codespaces-link', 'href');
      check(await page.isVisible('#codespaces-link') && link === 'https://codespaces.new/example/system-design-lab?devcontainer_path=.devcontainer%2Ft1-01%2Fdevcontainer.json', `"Open in Codespaces" links to t1-01's configuration (${link})`);
      const files = await applySolution(url, SCENARIO);
      check(files.length > 0, `the solution is applied through the lab's API (${files.map((f) => f.path).join(', ')})`);
      await page.reload();
      await page.waitForFunction((id) => window.sdlab?.state?.scenario?.id === id, SCENARIO, { timeout: 30_000 });
      await page.waitForSelector('#status[data-state=stopped]', { timeout: 30_000 });
      await page.click('#btn-start');
      await page.waitForSelector('#status[data-state=running]', { timeout: 6 * MINUTE });
      await page.click('#btn-check');
      await page.waitForSelector('.verdict', { timeout: 5 * MINUTE });
      const table = await page.textContent('#check-result');
      await shot(page, 'codespaces-check');
      check(await page.locator('.verdict.pass').count() === 1, `the check passes on the Codespaces path:\n${table}`);

      // An edit saved outside the page, as VS Code in the codespace saves it: the lab
      // rebuilds and restarts the service by itself, and the page follows.
      const mainRs = join(labHome, 'work/t1-01-diagnosing-failures/service/src/main.rs');
      const saved = Date.now();
      writeFileSync(mainRs, `${readFileSync(mainRs, 'utf8')}\n// saved by another editor\n`);
      // Nothing but the watcher restarts it here. The restart can be quicker than the page's
      // polling (an incremental build of a comment links in half a second), so it is seen in
      // the service's log: a "listening" line written after the save.
      const serviceLog = join(labHome, 'logs', SCENARIO, 'service-1.log');
      const relistened = () => readFileSync(serviceLog, 'utf8').split('\n').some((line) => {
        const m = /(\d{4}-\d\d-\d\dT[\d:.]+Z) .*listening on/.exec(line);
        return m !== null && Date.parse(m[1]) > saved;
      });
      await waitFor('the service restarted after the save on disk', relistened, 5 * MINUTE);
      await page.waitForSelector('#status[data-state=running]', { timeout: 5 * MINUTE });
      const after = await api(url, 'GET', `/scenarios/${SCENARIO}/status`);
      const built = after.events.find((e) => e.step === 'build service' && e.kind === 'finished');
      check(built && /compiled/.test(built.text ?? ''), `the edit on disk was compiled (${JSON.stringify(built)})`);
      await api(url, 'POST', `/scenarios/${SCENARIO}/stop`, {});
    } finally {
      try { process.kill(servePid, 'SIGTERM'); } catch { /* gone */ }
    }
    await waitFor('nothing of the fresh home left running', () => freshProcesses().length === 0, 60_000)
      .catch((e) => { throw new Error(`${e.message}:\n${freshProcesses().join('\n')}`); });
    check(true, 'nothing of the fresh home is left running');
  } finally {
    await browser.close();
  }
  console.log(`[install-ui] PASS in ${elapsed()}`);
}

main().catch((e) => {
  console.error(e.message ?? e);
  process.exit(1);
});
