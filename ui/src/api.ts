// The engine's HTTP API, as the UI uses it. The per-launch token arrives in the URL fragment
// (`#token=...`), which the browser never sends to a server; it goes out only as the
// Authorization header (or `?token=` on event streams, which cannot set headers).

/** The scenario the address asks for (`#token=...&scenario=t1-05`, as `sdlab open t1-05`
 *  writes it), read before the token's code below clears the fragment. */
export const linkedScenario = new URLSearchParams(location.hash.slice(1)).get('scenario');

const token = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
  if (fromHash) {
    // Kept for this tab only (a reload still works), and taken out of the address bar so it
    // does not end up in a screenshot, a bookmark or a shared link.
    sessionStorage.setItem('sdlab-token', fromHash);
    history.replaceState(null, '', location.pathname + location.search);
  }
  return fromHash ?? sessionStorage.getItem('sdlab-token') ?? '';
})();

export const hasToken = token !== '';

export class ApiError extends Error {
  constructor(public status: number, message: string) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown, raw = false): Promise<T> {
  const headers: Record<string, string> = { Authorization: `Bearer ${token}` };
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    payload = raw ? (body as string) : JSON.stringify(body);
    headers['Content-Type'] = raw ? 'text/plain; charset=utf-8' : 'application/json';
  }
  const response = await fetch(`/api${path}`, { method, headers, body: payload, keepalive: raw && method === 'PUT' && (body as string).length < 60000 });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, json?.error ?? `${method} ${path}: HTTP ${response.status}`);
  return json as T;
}

export const get = <T>(path: string) => call<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => call<T>('POST', path, body ?? {});
export const put = <T>(path: string, body: unknown) => call<T>('PUT', path, body);
export const putText = <T>(path: string, text: string) => call<T>('PUT', path, text, true);
export const del = <T>(path: string) => call<T>('DELETE', path);

/** An EventSource on an API stream; `onEvent` gets each named event's JSON. */
export function stream(path: string, event: string, onEvent: (data: any) => void): EventSource {
  const source = new EventSource(`/api${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`);
  source.addEventListener(event, (e) => onEvent(JSON.parse((e as MessageEvent).data)));
  return source;
}

// The API's types (engine/src/api/model.rs is the contract).
export interface Progress { checks_run: number; passed: boolean; solution_revealed: boolean; hints_shown: number; answers: Record<string, string> }
/** `codespaces`: the "Open in Codespaces" link, when the lab's GitHub repository is configured. */
export interface ScenarioSummary { id: string; title: string; track: number; stage: string; minutes: number; concepts: string[]; progress: Progress; codespaces?: string }
export interface Question { id: string; figure: string | null }
export interface ScenarioDetail extends ScenarioSummary { guide: string; hints: number; instances: number; workers: number; postgres: boolean; redis: boolean; replica: boolean; profiles: string[]; questions: Question[]; panels: Panel[]; charts: ChartView[] }
/** A scenario's own chart (`[[panels]]` in scenario.toml) over the services' /metrics. */
export interface Panel { title: string; unit: string; series: { label: string; metric: string; rate: boolean; instance: number | null }[] }
/** A chart as the engine defines it for the window and the Grafana dashboards alike. */
export interface ChartView { id: string; title: string; unit: string; series: string[] }
export interface EventView { kind: string; step?: string; text?: string; took_ms?: number }
export interface Status { scenario: string; state: 'stopped' | 'starting' | 'running' | 'failed'; step?: string | null; url?: string; urls?: string[]; entry?: string; cpu_limit?: string | null; error?: string; diagnostics?: string | null; events: EventView[]; owner_pid?: number }
export interface Second { second: number; sent: number; ok: number; failed: number; errors: Record<string, number>; p50_ms: number; p95_ms: number; p99_ms: number; max_ms: number; in_flight: number }
export interface Latency { p50_ms: number; p90_ms: number; p95_ms: number; p99_ms: number; p999_ms: number; max_ms: number; mean_ms: number }
export interface Summary { duration_s: number; sent: number; ok: number; failed: number; error_rate: number; achieved_rate: number; offered_rate: number; latency: Latency; errors: Record<string, number> }
/** A service log line as the engine parsed it (engine/src/logview.rs). */
export interface LogEntry { raw: string; json: boolean; time?: string; level?: string; message?: string; target?: string; request_id?: string; fields?: Record<string, string> }
export interface CheckLine { label: string; measured: string; required: string; passed: boolean; hint: string | null }
export interface CheckView { passed: boolean; lines: CheckLine[]; log_errors: string[] }
export interface Job { kind: 'load' | 'check'; state: 'running' | 'done' | 'failed'; seconds: Second[]; summary: Summary | null; check: CheckView | null; error: string | null; step: string | null }
export interface RunRecord { kind: 'load' | 'check'; finished_at: number; passed: boolean | null; summary: Summary | null; seconds: Second[] }
export interface FileNode { name: string; path: string; kind: 'file' | 'dir'; size?: number; children?: FileNode[] }
export interface FileTree { root: string; entries: FileNode[] }
export interface EditorFile { path: string; content: string; draft: string | null }
export interface Solution { notes: string; files: { path: string; content: string }[] }
export interface SqlResult { columns: string[]; rows: (string | null)[][]; affected: number | null }
/** One second of the scenario's Redis (INFO); rates are null on the first sample. */
export interface RedisSample { hits_per_second: number | null; misses_per_second: number | null; hit_ratio: number | null; used_memory: number; maxmemory: number; evicted_per_second: number | null; rejected_writes: number; ops_per_second: number; clients: number }
/** One second of the streaming replica: how far behind it is, and its apply delay. */
export interface ReplicaSample { state: string; replay_lag_seconds: number | null; lag_bytes: number | null; apply_delay_ms: number | null; cpu: number | null; rss_bytes: number | null }
export interface Sample { at: number; services: { instance: number; port: number; up: boolean; down_reason: string | null; metrics: Record<string, number>; cpu: number | null }[]; postgres: { by_state: Record<string, number>; sessions_total: number; opened_per_second: number; cpu: number | null } | null; redis: RedisSample | null; replica: ReplicaSample | null }
/** The Redis console's answer: the reply as redis-cli prints it. */
export interface RedisReply { read_only: boolean; reply: string }
