// System Design Lab's web UI: the sidebar of scenarios, the guide, and the work pane
// (charts, code, check, SQL, Redis when the scenario has it, logs, solution). It talks only to the engine's API on this
// origin (see api.ts); nothing is loaded from elsewhere.

import './locale';
import './style.css';
import { ApiError, get, hasToken, linkedScenario, post, stream, type CheckView, type Job, type RedisReply, type ReplicaSample, type RunRecord, type Sample, type ScenarioDetail, type ScenarioSummary, type Solution, type SqlResult, type Status, type EditorFile, type LogEntry } from './api';
import { Charts } from './charts';
import { CodeEditor, SolutionDiff } from './editor';
import { duration, historyChanged, markdown, renderGuide } from './guide';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const buttons = {
  start: $<HTMLButtonElement>('btn-start'),
  stop: $<HTMLButtonElement>('btn-stop'),
  load: $<HTMLButtonElement>('btn-load'),
  cancel: $<HTMLButtonElement>('btn-cancel'),
  check: $<HTMLButtonElement>('btn-check'),
  hint: $<HTMLButtonElement>('btn-hint'),
  reveal: $<HTMLButtonElement>('btn-reveal'),
  reset: $<HTMLButtonElement>('btn-reset'),
  save: $<HTMLButtonElement>('btn-save'),
  newFile: $<HTMLButtonElement>('btn-new'),
  discard: $<HTMLButtonElement>('btn-discard'),
};

const charts = new Charts($('charts'));
const code = new CodeEditor($('file-tree'), $('editor'), $('editor-path'), $('editor-state'), (dirty) => {
  buttons.save.disabled = !dirty;
  buttons.discard.disabled = !dirty;
});
let diff: SolutionDiff | null = null;

/** What the page knows about the open scenario. */
const state = {
  scenario: null as ScenarioDetail | null,
  status: null as Status | null,
  job: null as Job | null,
  history: [] as RunRecord[],
  metrics: null as EventSource | null,
  logs: null as EventSource | null,
};

// Tests (ui/tests/e2e.mjs) read the charts and drive the editor through this.
(window as any).sdlab = { charts, editor: code.editor, code, state };

function setStatus(text: string, kind: 'info' | 'busy' | 'ok' | 'error' = 'info') {
  const el = $('status');
  el.textContent = text;
  el.className = kind;
}

function showError(e: unknown) {
  setStatus(e instanceof Error ? e.message : String(e), 'error');
}

// ---- sidebar -------------------------------------------------------------------------

async function loadSidebar() {
  const list = await get<ScenarioSummary[]>('/scenarios');
  const nav = $('scenarios');
  nav.replaceChildren();
  const groups = new Map<string, ScenarioSummary[]>();
  for (const s of list) {
    const key = `Track ${s.track} · ${s.stage}`;
    groups.set(key, [...(groups.get(key) ?? []), s]);
  }
  for (const [group, scenarios] of groups) {
    const h = document.createElement('h3');
    h.textContent = group;
    const ul = document.createElement('ul');
    for (const s of scenarios) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = '#';
      a.dataset.id = s.id;
      const mark = s.progress.passed ? '✓' : s.progress.checks_run > 0 ? '◐' : '○';
      a.title = s.progress.passed ? 'passed' : s.progress.checks_run > 0 ? `${s.progress.checks_run} check(s), not passed yet` : 'not started';
      a.innerHTML = `<span class="mark"></span> <span class="sid"></span> <span class="stitle"></span>`;
      a.querySelector('.mark')!.textContent = mark;
      a.querySelector('.sid')!.textContent = s.id;
      a.querySelector('.stitle')!.textContent = s.title;
      a.classList.toggle('current', state.scenario?.id === s.id);
      a.addEventListener('click', (e) => {
        e.preventDefault();
        void openScenario(s.id);
      });
      li.append(a);
      ul.append(li);
    }
    nav.append(h, ul);
  }
}

// ---- a scenario ----------------------------------------------------------------------

async function openScenario(id: string) {
  await code.flushDrafts().catch(() => {});
  state.metrics?.close();
  state.logs?.close();
  state.metrics = state.logs = null;
  const detail = await get<ScenarioDetail>(`/scenarios/${id}`);
  state.scenario = detail;
  localStorage.setItem('sdlab-scenario', id);
  $('title').textContent = `${detail.id} — ${detail.title}`;
  // Only when the lab's GitHub repository is configured (engine: catalog/codespaces.rs).
  const codespaces = $<HTMLAnchorElement>('codespaces-link');
  codespaces.hidden = !detail.codespaces;
  codespaces.href = detail.codespaces ?? '#';
  // The logs tab: each instance's log, then each worker's (`?instance=N` / `?worker=N`).
  const processes = [
    ...Array.from({ length: detail.instances }, (_, i) => new Option(`instance ${i + 1}`, `instance=${i + 1}`)),
    ...Array.from({ length: detail.workers }, (_, i) => new Option(`worker ${i + 1}`, `worker=${i + 1}`)),
  ];
  $<HTMLSelectElement>('log-process').replaceChildren(...processes);
  $('log-process').hidden = processes.length < 2;
  const profiles = $<HTMLSelectElement>('load-profile');
  profiles.replaceChildren(...detail.profiles.map((name) => new Option(name, name, name === 'explore', name === 'explore')));
  state.history = await get<RunRecord[]>(`/scenarios/${id}/history`);
  renderGuide($('guide'), id, detail.guide, detail.progress.answers, () => state.history);
  $('hints').replaceChildren();
  if (detail.progress.hints_shown > 0) await showHints(await get(`/scenarios/${id}/hints`));
  charts.setCharts(detail.charts, detail.panels);
  showRedisConsole(detail.redis);
  showReplicaControls(detail.replica);
  charts.clearSignals();
  showPreviousRun();
  await code.load(id);
  await loadSidebar();
  shownKey = '';
  await pollStatus();
  // A load run or check still under way (the page was reloaded): follow it.
  const job = await get<Job>(`/scenarios/${id}/job`).catch(() => null);
  if (job?.state === 'running') await pollJob();
}

/** Before any run in this session, the charts show the last recorded one. */
function showPreviousRun() {
  const last = state.history.filter((r) => r.kind === 'load').at(-1);
  charts.showLoad([], last?.seconds ?? null);
}

function render() {
  const st = state.status?.state ?? 'stopped';
  // Another sdlab process (a terminal's `sdlab start`) owns the lab: this window can watch it,
  // not stop, load or check it, nor start another one beside it.
  const elsewhere = state.status?.owner_pid != null;
  const running = st === 'running' && !elsewhere;
  const busyJob = state.job?.state === 'running';
  buttons.start.disabled = !state.scenario || st === 'starting' || st === 'running' || elsewhere || busyJob;
  buttons.stop.disabled = elsewhere || !(st === 'running' || st === 'starting');
  buttons.load.disabled = !running || busyJob;
  // A check brings up its own lab (your code on a fresh copy of the seeded database), so it
  // needs no running playground; it waits while the playground is starting.
  buttons.check.disabled = !state.scenario || elsewhere || st === 'starting' || busyJob;
  buttons.cancel.disabled = !busyJob;
  buttons.hint.disabled = buttons.reveal.disabled = !state.scenario;
  buttons.reset.disabled = !state.scenario || elsewhere || st === 'running' || st === 'starting';
  buttons.newFile.disabled = !state.scenario;
}

/** The page follows the lab while it is open: the status is read every second (0.7 s while
 *  starting), so a scenario started, stopped or crashed elsewhere (a terminal, another tab,
 *  another client of the API) shows within 2 s. Not while the tab is hidden: it resumes, at
 *  once, when the tab is shown again. */
const POLL_MS = 1000;
const POLL_STARTING_MS = 700;
let statusTimer: number | undefined;
/** The newest status request: an older answer arriving late is dropped. */
let statusSeq = 0;
/** What the status line shows, so that a poll rewrites it (and moves to the code tab for a
 *  compile error) only when the lab's state changed, not over a message such as "Saved." */
let shownKey = '';

function scheduleStatus(ms: number) {
  window.clearTimeout(statusTimer);
  statusTimer = undefined;
  if (!state.scenario || document.visibilityState === 'hidden') return;
  statusTimer = window.setTimeout(() => {
    pollStatus().catch((e) => {
      // The lab's server went away (or restarts): say so once, keep trying.
      if (shownKey !== 'unreachable') showError(`The lab does not answer: ${e instanceof Error ? e.message : e}`);
      shownKey = 'unreachable';
      scheduleStatus(2 * POLL_MS);
    });
  }, ms);
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'hidden') scheduleStatus(0); // clears the timer
  else void pollStatus().catch(() => scheduleStatus(POLL_MS));
});

/** Reads the status and shows what changed; the next read is scheduled. */
async function pollStatus() {
  window.clearTimeout(statusTimer);
  if (!state.scenario) return;
  const id = state.scenario.id;
  const seq = ++statusSeq;
  let status: Status;
  try {
    status = await get<Status>(`/scenarios/${id}/status`);
  } catch (e) {
    if (seq === statusSeq) scheduleStatus(POLL_MS);
    throw e;
  }
  if (state.scenario?.id !== id || seq !== statusSeq) return;
  state.status = status;
  const done = status.events.filter((e) => e.kind === 'finished').length;
  const owner = status.owner_pid;
  const key = JSON.stringify([id, status.state, status.step, status.entry, status.urls, status.error, owner, status.state === 'starting' ? done : 0]);
  const changed = key !== shownKey;
  shownKey = key;
  switch (status.state) {
    case 'starting':
      if (changed) {
        setStatus(owner != null
          ? `Starting in another sdlab process (pid ${owner}): ${status.step ?? 'preparing'}…`
          : `Starting: ${status.step ?? 'preparing'}… (${done} step${done === 1 ? '' : 's'} done)`, 'busy');
      }
      break;
    case 'running':
      if (owner != null) {
        if (changed) setStatus(`Running in another sdlab process (pid ${owner}) at ${status.entry ?? status.url}. This window shows its code, SQL and logs; to load, check or restart it from here, stop it there first (Ctrl-C, or sdlab stop ${id}).`, 'ok');
        break;
      }
      if (changed) {
        setStatus(`Running at ${status.entry ?? status.url}${(status.urls?.length ?? 0) > 1 ? ` (${status.urls!.length} instances)` : ''}${status.cpu_limit ? ` · CPU per instance: ${status.cpu_limit}` : ''}`, 'ok');
        code.showDiagnostics(null);
        $('diagnostics').hidden = true;
      }
      if (!state.metrics) state.metrics = stream(`/scenarios/${id}/metrics/stream`, 'sample', (s: Sample) => { charts.addSample(s); showInstances(s); showReplica(s); });
      break;
    case 'failed':
      state.metrics?.close();
      state.metrics = null;
      if (changed) {
        setStatus(owner != null ? `${status.error ?? 'failed'} (stop that lab: sdlab stop ${id})` : status.error ?? 'failed', 'error');
        if (status.diagnostics) await showCompileErrors(status.diagnostics);
      }
      break;
    default:
      if (changed) setStatus('Stopped. Start runs the scenario: database, build, service.');
  }
  const el = $('status');
  el.dataset.state = status.state;
  el.dataset.owner = owner != null ? 'elsewhere' : 'here';
  render();
  if (seq === statusSeq) scheduleStatus(status.state === 'starting' ? POLL_STARTING_MS : POLL_MS);
}

async function showCompileErrors(diagnostics: string) {
  const pre = $('diagnostics');
  pre.textContent = diagnostics;
  pre.hidden = false;
  selectTab('code');
  const file = code.firstErrorFile(diagnostics);
  if (file && code.openPath !== file) await code.open(file);
  code.showDiagnostics(diagnostics);
}

// ---- load runs and checks ------------------------------------------------------------

let jobTimer: number | undefined;

async function startJob(kind: 'load' | 'check') {
  const id = state.scenario!.id;
  const body = kind === 'load' ? { profile: $<HTMLSelectElement>('load-profile').value || undefined } : {};
  state.job = await post<Job>(`/scenarios/${id}/${kind}`, body);
  selectTab('charts');
  render();
  await pollJob();
}

async function pollJob() {
  window.clearTimeout(jobTimer);
  const id = state.scenario!.id;
  let job: Job;
  try {
    job = await get<Job>(`/scenarios/${id}/job`);
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) return;
    throw e;
  }
  state.job = job;
  const before = state.history.filter((r) => r.kind === job.kind).at(-1)?.seconds ?? null;
  charts.showLoad(job.seconds, before);
  const last = job.seconds.at(-1);
  const what = job.kind === 'load' ? 'Load run' : 'Check';
  if (job.state === 'running') {
    if (!job.seconds.length && job.step) setStatus(`${what}: ${job.step}`, 'busy');
    else setStatus(`${what}: second ${job.seconds.length}${last ? `, ${last.sent} sent, p95 ${duration(last.p95_ms)}, ${last.failed} failed` : ''}`, 'busy');
    jobTimer = window.setTimeout(() => void pollJob(), 1000);
  } else {
    if (job.state === 'failed') setStatus(`${what} failed: ${job.error}`, 'error');
    else if (job.summary) setStatus(`${what} done: ${job.summary.sent} requests, p95 ${duration(job.summary.latency.p95_ms)}, errors ${(job.summary.error_rate * 100).toFixed(1)} %${job.check ? (job.check.passed ? ' — PASS' : ' — FAIL') : ''}`, job.check && !job.check.passed ? 'error' : 'ok');
    if (job.check) showCheck(job.check);
    state.history = await get<RunRecord[]>(`/scenarios/${id}/history`);
    historyChanged($('guide'));
    await loadSidebar();
  }
  render();
}

function showCheck(check: CheckView) {
  const box = $('check-result');
  const verdict = document.createElement('p');
  verdict.className = `verdict ${check.passed ? 'pass' : 'fail'}`;
  verdict.textContent = check.passed ? 'PASS: every line holds.' : 'FAIL: see the failing lines and their hints.';
  const table = document.createElement('table');
  table.className = 'check-table';
  table.innerHTML = '<thead><tr><th>line</th><th>measured</th><th>required</th><th></th></tr></thead>';
  const body = document.createElement('tbody');
  for (const line of check.lines) {
    const tr = document.createElement('tr');
    tr.className = line.passed ? 'pass' : 'fail';
    for (const text of [line.label, line.measured, line.required, line.passed ? 'PASS' : 'FAIL']) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    body.append(tr);
    if (!line.passed && line.hint) {
      const hint = document.createElement('tr');
      hint.className = 'hint';
      hint.innerHTML = '<td colspan="4"></td>';
      hint.firstElementChild!.textContent = `Hint: ${line.hint}`;
      body.append(hint);
    }
  }
  table.append(body);
  box.replaceChildren(verdict, table);
  if (check.log_errors.length) {
    const pre = document.createElement('pre');
    pre.textContent = `Errors in the service's log:\n${check.log_errors.join('\n')}`;
    box.append(pre);
  }
  selectTab('check');
}

// ---- hints, solution, reset, SQL, logs ----------------------------------------------

async function showHints(h: { total: number; shown: string[] }) {
  const box = $('hints');
  box.innerHTML = h.shown.map((text, i) => `<div class="hint-box"><b>Hint ${i + 1} of ${h.total}</b>${markdown(text)}</div>`).join('');
}

async function reveal() {
  const id = state.scenario!.id;
  const ok = window.confirm('Reveal the solution? Trying first is where the learning is. Your code is not changed.');
  if (!ok) return;
  const solution = await post<Solution>(`/scenarios/${id}/solution`, { confirm: true });
  $('solution-notes').innerHTML = markdown(solution.notes);
  const list = document.createElement('div');
  list.className = 'solution-files';
  list.append('Your code (left) against the solution (right): ');
  diff ??= new SolutionDiff($('diff'));
  const show = async (path: string, theirs: string) => {
    let mine = '';
    try {
      const file = await get<EditorFile>(`/scenarios/${id}/files/${path}`);
      mine = file.draft ?? file.content;
    } catch {
      mine = ''; // the learner has no such file (e.g. a migration the solution adds)
    }
    diff!.show(path, mine, theirs);
    list.querySelectorAll('button').forEach((b) => b.classList.toggle('active', b.textContent === path));
  };
  for (const f of solution.files) {
    const b = document.createElement('button');
    b.textContent = f.path;
    b.addEventListener('click', () => void show(f.path, f.content));
    list.append(b);
  }
  $('solution-files').replaceChildren(list);
  selectTab('solution');
  const first = solution.files.find((f) => f.path.endsWith('.rs')) ?? solution.files[0];
  if (first) await show(first.path, first.content);
  await loadSidebar();
}

async function runSql() {
  const out = $('sql-output');
  out.textContent = 'running…';
  const query = $<HTMLTextAreaElement>('sql-input').value;
  const write = $<HTMLInputElement>('sql-write').checked;
  const replica = !!state.scenario?.replica && $<HTMLInputElement>('sql-replica').checked;
  try {
    const r = await post<{ read_only: boolean; results: SqlResult[]; note: string | null }>(`/scenarios/${state.scenario!.id}/sql`, { query, write, replica });
    out.replaceChildren(...r.results.map((res): HTMLElement => {
      if (!res.columns.length) {
        const p = document.createElement('p');
        p.textContent = res.affected !== null ? `${res.affected} row(s) affected` : 'OK';
        return p;
      }
      const table = document.createElement('table');
      const head = table.insertRow();
      res.columns.forEach((c) => { const th = document.createElement('th'); th.textContent = c; head.append(th); });
      res.rows.forEach((row) => { const tr = table.insertRow(); row.forEach((v) => { tr.insertCell().textContent = v ?? 'NULL'; }); });
      return table;
    }));
    // The engine decides when a statement changed the schema (the check will not see it).
    if (r.note) {
      const note = document.createElement('p');
      note.className = 'sql-note';
      note.textContent = `Note: ${r.note}`;
      out.append(note);
    }
  } catch (e) {
    out.textContent = (e as Error).message;
  }
}

/** The apply-delay control and the SQL console's replica choice are there only for a
 *  scenario with a streaming replica (`[topology.postgres] replicas`). */
function showReplicaControls(on: boolean) {
  $('replica-control').hidden = !on;
  $('sql-replica-choice').hidden = !on;
  if (!on) $<HTMLInputElement>('sql-replica').checked = false;
  $('replica-state').textContent = '';
}

/** The replica's state and delay beside its control, once a second; the delay box takes the
 *  running value until the learner edits it. */
function showReplica(sample: Sample) {
  const r = sample.replica;
  if (!state.scenario?.replica || !r) return;
  const lag = r.replay_lag_seconds == null ? 'lag unknown' : `lag ${r.replay_lag_seconds.toFixed(2)} s`;
  $('replica-state').textContent = `${r.state}, ${lag}, apply delay ${r.apply_delay_ms ?? '?'} ms`;
  const input = $<HTMLInputElement>('replica-delay');
  if (document.activeElement !== input && r.apply_delay_ms != null) input.value = String(r.apply_delay_ms);
}

/** Sets the running replica's apply delay (`recovery_min_apply_delay`); the lag chart shows
 *  the new delay from the next second on. */
async function setReplicaDelay() {
  const ms = Number($<HTMLInputElement>('replica-delay').value);
  const out = $('replica-state');
  if (!Number.isInteger(ms) || ms < 0 || ms > 60000) {
    out.textContent = 'A delay is a whole number of milliseconds from 0 to 60000.';
    return;
  }
  try {
    const r = await post<ReplicaSample>(`/scenarios/${state.scenario!.id}/replica`, { apply_delay_ms: ms });
    out.textContent = `apply delay now ${r.apply_delay_ms ?? ms} ms (${r.state})`;
  } catch (e) {
    out.textContent = (e as Error).message;
  }
}

/** The Redis tab is there only for a scenario with Redis (`[topology.redis]`). */
function showRedisConsole(on: boolean) {
  const tab = document.querySelector<HTMLElement>('#tabs button[data-tab=redis]')!;
  tab.hidden = !on;
  if (!on && tab.classList.contains('active')) selectTab('charts');
  $('redis-output').replaceChildren();
}

/** Sends the command line to the scenario's Redis and appends it and the reply (or why it
 *  was refused) to the transcript, newest last, like a redis-cli session. */
async function runRedis() {
  const input = $<HTMLInputElement>('redis-input');
  const command = input.value.trim();
  if (!command) return;
  const write = $<HTMLInputElement>('redis-write').checked;
  const out = $('redis-output');
  const entry = document.createElement('div');
  const cmd = document.createElement('div');
  cmd.className = 'cmd';
  cmd.textContent = `${write ? 'redis (writes allowed)' : 'redis (read-only)'}> ${command}`;
  const reply = document.createElement('div');
  reply.textContent = '…';
  entry.append(cmd, reply);
  out.append(entry);
  // The last 50 commands: INFO is long.
  while (out.childElementCount > 50) out.firstElementChild!.remove();
  try {
    const r = await post<RedisReply>(`/scenarios/${state.scenario!.id}/redis`, { command, write });
    reply.textContent = r.reply;
    reply.className = r.reply.startsWith('(error)') ? 'reply-error' : 'reply';
    input.select();
  } catch (e) {
    reply.textContent = (e as Error).message;
    reply.className = 'refused';
  }
  entry.scrollIntoView({ block: 'end' });
}

/** One log line: a JSON line as time, level, request ID (click: show only its lines),
 * message and its other fields; a text line as written. */
function logLine(entry: LogEntry): HTMLElement {
  const line = document.createElement('div');
  if (!entry.json) {
    line.textContent = entry.raw;
    return line;
  }
  const part = (text: string, cls: string) => {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    line.append(span, ' ');
    return span;
  };
  if (entry.time) part(entry.time, 'log-time');
  if (entry.level) part(entry.level.padStart(5), `log-level ${entry.level.toLowerCase()}`);
  if (entry.request_id) {
    const id = part(`[${entry.request_id}]`, 'log-request');
    id.title = 'Show only this request';
    id.addEventListener('click', () => filterLogs(entry.request_id ?? ''));
  }
  if (entry.message) part(entry.message, 'log-message');
  for (const [key, value] of Object.entries(entry.fields ?? {})) part(`${key}=${value}`, 'log-field');
  line.title = entry.raw;
  return line;
}

function openLogs() {
  if (!state.scenario || state.logs) return;
  const pre = $('logs');
  pre.textContent = '';
  const request = ($('log-request') as HTMLInputElement).value.trim();
  const whose = $<HTMLSelectElement>('log-process').value || 'instance=1';
  const query = `?${whose}` + (request ? `&request=${encodeURIComponent(request)}&lines=1000` : '');
  let shown = 0;
  state.logs = stream(`/scenarios/${state.scenario.id}/logs/stream${query}`, 'entries', (more: LogEntry[]) => {
    pre.append(...more.map(logLine));
    shown += more.length;
    for (; shown > 1000; shown--) pre.firstElementChild?.remove();
    pre.scrollTop = pre.scrollHeight;
  });
}

/** Shows only the lines of one request ID (all lines when empty). */
function filterLogs(request: string) {
  ($('log-request') as HTMLInputElement).value = request;
  state.logs?.close();
  state.logs = null;
  openLogs();
}

function selectTab(name: string) {
  document.querySelectorAll<HTMLElement>('#tabs button').forEach((b) => b.classList.toggle('active', b.dataset.tab === name));
  document.querySelectorAll<HTMLElement>('.tab').forEach((t) => t.classList.toggle('active', t.id === `tab-${name}`));
  if (name === 'logs') openLogs();
}

// ---- wiring --------------------------------------------------------------------------

function on(button: HTMLButtonElement, action: () => Promise<unknown>) {
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (e) {
      showError(e);
    } finally {
      render();
      if (button === buttons.save || button === buttons.discard) button.disabled = !code.dirty;
      if (button === buttons.newFile) button.disabled = !state.scenario;
    }
  });
}

const sid = () => state.scenario!.id;
on(buttons.start, async () => { await post(`/scenarios/${sid()}/start`); shownKey = ''; await pollStatus(); });
on(buttons.stop, async () => { setStatus('Stopping…', 'busy'); await post(`/scenarios/${sid()}/stop`); shownKey = ''; await pollStatus(); });
on(buttons.load, () => startJob('load'));
on(buttons.check, () => startJob('check'));
on(buttons.cancel, () => post(`/scenarios/${sid()}/job/cancel`));
on(buttons.hint, async () => showHints(await post(`/scenarios/${sid()}/hints/next`)));
on(buttons.reveal, reveal);
on(buttons.reset, async () => {
  if (!window.confirm('Reset restores the broken code and the seeded database. Your code is copied to a backup first. Reset?')) return;
  setStatus('Resetting…', 'busy');
  const r = await post<{ backup: string | null }>(`/scenarios/${sid()}/reset`);
  await code.load(sid());
  setStatus(r.backup ? `Reset. Your code was copied to ${r.backup}` : 'Reset.', 'ok');
});
on(buttons.newFile, async () => {
  const path = window.prompt('Path of the new file, relative to your service folder (e.g. migrations/0001_my_index.sql):');
  if (path?.trim()) await code.open(path.trim(), true);
});
on(buttons.save, async () => {
  const written = await code.save();
  if (!written.length) return;
  if (state.status?.owner_pid != null) {
    setStatus(`Saved. The lab of sdlab pid ${state.status.owner_pid} runs the code it started with: restart it there (sdlab stop ${sid()}; sdlab start ${sid()}).`, 'ok');
  } else if (state.status?.state === 'running' || state.status?.state === 'failed') {
    setStatus('Saved; rebuilding and restarting…', 'busy');
    await post(`/scenarios/${sid()}/restart`);
    shownKey = '';
  } else {
    setStatus('Saved. Start builds and runs it.', 'ok');
  }
  await pollStatus();
});
on(buttons.discard, () => code.discard());
$('btn-sql').addEventListener('click', () => void runSql());
$('btn-redis').addEventListener('click', () => void runRedis());
$('btn-replica-delay').addEventListener('click', () => void setReplicaDelay());
$('redis-input').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') void runRedis();
});
$('log-request').addEventListener('keydown', (e) => {
  if (e.key === 'Enter') filterLogs($<HTMLInputElement>('log-request').value.trim());
});
$('btn-log-all').addEventListener('click', () => filterLogs(''));
$('log-process').addEventListener('change', () => filterLogs($<HTMLInputElement>('log-request').value.trim()));
// The Run button says which mode it runs in, for both consoles.
for (const kind of ['sql', 'redis']) {
  const box = $<HTMLInputElement>(`${kind}-write`);
  box.addEventListener('change', () => { $(`btn-${kind}`).textContent = box.checked ? 'Run (writes allowed)' : 'Run (read-only)'; });
}
document.querySelectorAll<HTMLElement>('#tabs button').forEach((b) => b.addEventListener('click', () => selectTab(b.dataset.tab!)));
window.addEventListener('beforeunload', () => void code.flushDrafts());
document.addEventListener('keydown', (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === 's') {
    e.preventDefault();
    if (!buttons.save.disabled) buttons.save.click();
  }
});

async function main() {
  if (!hasToken) {
    setStatus('This page needs the lab\'s token: open the address `sdlab` printed (it ends in #token=...). In a codespace, run `cat /tmp/sdlab-url` in its terminal and open that address.', 'error');
    return;
  }
  void showMissing();
  try {
    await loadSidebar();
    // The scenario the address names (`sdlab open t1-05`), else the one open last time.
    const known = (id: string | null) => id && [...document.querySelectorAll<HTMLElement>('#scenarios a')].some((a) => a.dataset.id === id);
    const wanted = [linkedScenario, localStorage.getItem('sdlab-scenario')].find(known);
    const first = document.querySelector<HTMLElement>('#scenarios a')?.dataset.id;
    if (wanted || first) await openScenario(wanted ?? first!);
  } catch (e) {
    showError(e);
  }
  render();
}

void main();

interface Finding { what: string; ok: boolean; detail: string; fix: string; required: boolean }

/** What this machine lacks for the lab (cargo, PostgreSQL, ...), as a banner above the
 *  toolbar: each missing requirement with the way to get it (GET /api/doctor). */
async function showMissing() {
  let findings: Finding[];
  try {
    findings = await get<Finding[]>('/doctor');
  } catch {
    return;
  }
  const missing = findings.filter((f) => f.required && !f.ok);
  if (missing.length === 0) return;
  const banner = document.createElement('div');
  banner.id = 'missing';
  banner.setAttribute('role', 'alert');
  const head = document.createElement('strong');
  head.textContent = 'This machine is missing what the lab needs to start a scenario:';
  const list = document.createElement('ul');
  for (const f of missing) {
    const item = document.createElement('li');
    item.textContent = `${f.what}: ${f.fix}`;
    list.append(item);
  }
  banner.append(head, list);
  $('toolbar').prepend(banner);
}

/** One badge per instance from the latest sample: up, or DOWN with the reason (a killed
 *  instance shows here within a second, and its series stop on the charts). */
function showInstances(sample: Sample) {
  const box = $('instances');
  box.replaceChildren(
    ...sample.services.map((s) => {
      const badge = document.createElement('span');
      badge.className = `instance ${s.up ? 'up' : 'down'}`;
      badge.dataset.instance = String(s.instance);
      badge.textContent = s.up
        ? `instance ${s.instance} :${s.port} up${s.cpu === null ? '' : ` · ${s.cpu.toFixed(2)} cores`}`
        : `instance ${s.instance} :${s.port} DOWN (${s.down_reason ?? 'no answer'})`;
      return badge;
    }),
  );
}
