// Live charts (uPlot). The load charts are drawn from the job's per-second stats (what the
// load generator measured: requests/s, latency percentiles, errors); the previous run of the
// same kind is overlaid as dashed "before" lines. The signal charts come from the 1 Hz
// metrics stream: PostgreSQL sessions by state, the service's pool (summed over instances),
// and CPU of PostgreSQL and of each instance (up to four). A scenario with Redis adds four
// charts from Redis INFO: commands/s (ops, hits, misses), the hit ratio, memory against
// maxmemory, and evictions/s with writes refused for memory (OOM)/s and clients. A scenario
// with a streaming replica adds two: how old the replica's data is against its apply delay,
// with the WAL it has not replayed yet, and the CPU of the primary beside the replica's (reads
// moved to the replica show there). A scenario's
// own panels (`[[panels]]` in its scenario.toml) follow, drawn from the metrics its services
// export. Which charts a scenario has, their titles, units and lines, in order, are the
// engine's (`ScenarioDetail.charts`, the one definition the Grafana dashboards in dashboards/
// are generated from); this file keeps how they look and where their values come from.

import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { ChartView, Panel, Sample, Second } from './api';

interface Chart {
  plot: uPlot;
  /** x, then one array per series. */
  data: number[][];
}

interface Spec {
  id: string;
  title: string;
  unit: string;
  series: { label: string; color: string; dash?: boolean }[];
  /** A fixed y range (the hit ratio's 0-100 %); else uPlot fits the data. */
  range?: [number, number];
}

/** The load charts: the previous run of the same kind is overlaid on them, dashed. */
const LOAD_IDS = ['rps', 'latency', 'errors'];

/** The window's look of the engine's charts: each line's colour, the previous run's dashed
 *  lines, dashed reference lines, and a fixed y range. What a chart shows (id, title, unit,
 *  lines, in order) is the engine's (`ScenarioDetail.charts`, the definition the Grafana
 *  dashboards are generated from); `addSample` and `showLoad` fill the lines in that order. */
const LOOK: Record<string, { colors: string[]; dashed?: number[]; before?: { label: string; color: string }[]; range?: [number, number] }> = {
  rps: { colors: ['#2563eb', '#16a34a'], before: [{ label: 'sent (before)', color: '#93c5fd' }] },
  latency: { colors: ['#16a34a', '#d97706', '#dc2626'], before: [{ label: 'p95 (before)', color: '#fcd34d' }, { label: 'p99 (before)', color: '#fca5a5' }] },
  errors: { colors: ['#dc2626'], before: [{ label: 'failed (before)', color: '#fca5a5' }] },
  pg: { colors: ['#dc2626', '#2563eb', '#d97706', '#7c3aed'] },
  pool: { colors: ['#16a34a', '#dc2626', '#2563eb'] },
  cpu: { colors: ['#7c3aed', '#2563eb', '#16a34a', '#d97706', '#dc2626'] },
  'redis-ops': { colors: ['#2563eb', '#16a34a', '#dc2626'] },
  'redis-ratio': { colors: ['#16a34a'], range: [0, 100] },
  'redis-memory': { colors: ['#2563eb', '#dc2626'], dashed: [1] },
  'redis-pressure': { colors: ['#d97706', '#dc2626', '#7c3aed'] },
  'replica-lag': { colors: ['#dc2626', '#7c3aed'], dashed: [1] },
  'replica-wal': { colors: ['#d97706'] },
  'replica-cpu': { colors: ['#7c3aed', '#0891b2'] },
};

/** Charts the window shows another way: instances up is the strip above the charts. */
const ELSEWHERE = ['up'];

/** One of the engine's charts as the window draws it. The CPU chart's one instance line (a
 *  series per instance in Prometheus) is four here: the window draws up to four instances. */
function specOf(view: ChartView): Spec {
  const look = LOOK[view.id];
  const labels = view.id === 'cpu' ? view.series.flatMap((l) => (l === 'instance' ? [1, 2, 3, 4].map((i) => `instance ${i}`) : [l])) : view.series;
  const series = labels.map((label, j) => ({
    label,
    color: look?.colors[j] ?? PANEL_COLORS[j % PANEL_COLORS.length],
    dash: look?.dashed?.includes(j),
  }));
  for (const b of look?.before ?? []) series.push({ label: b.label, color: b.color, dash: true });
  return { id: view.id, title: view.title, unit: view.unit, series, range: look?.range };
}

const MIB = 1024 * 1024;
const NONE = null as unknown as number;

const PANEL_COLORS = ['#2563eb', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#0891b2'];

export class Charts {
  private charts = new Map<string, Chart>();
  /** The open scenario's charts, in order. */
  private specs: Spec[] = [];
  /** The open scenario's panels, their chart ids, and the last value of each rate series. */
  private panels: { id: string; panel: Panel }[] = [];
  private lastValues = new Map<string, { at: number; value: number }>();

  constructor(private root: HTMLElement) {
    new ResizeObserver(() => this.resize()).observe(root);
  }

  /** Whether the open scenario has Redis, and a replica (their charts are drawn). */
  private redis = false;
  private replica = false;

  /** Replaces the previous scenario's charts with this one's, as the engine defines them
   *  (`ScenarioDetail.charts`: load, signals, Redis's with `[topology.redis]`, the replica's
   *  with one, then `[[panels]]`, whose values are read from `panels`). */
  setCharts(views: ChartView[], panels: Panel[]) {
    for (const [id, chart] of this.charts) {
      chart.plot.destroy();
      this.root.querySelector(`[data-chart="${id}"]`)?.remove();
    }
    this.charts.clear();
    this.lastValues.clear();
    this.specs = views.filter((v) => !ELSEWHERE.includes(v.id)).map(specOf);
    this.redis = this.specs.some((s) => s.id.startsWith('redis-'));
    this.replica = this.specs.some((s) => s.id.startsWith('replica-'));
    this.panels = panels.map((panel, i) => ({ id: `panel-${i}`, panel }));
    for (const spec of this.specs) this.add(spec);
  }

  /** Ids of the open scenario's panel charts (the browser test reads them). */
  panelIds(): string[] {
    return this.panels.map((p) => p.id);
  }

  private add(spec: Spec) {
    const box = document.createElement('div');
    box.className = 'chart';
    box.dataset.chart = spec.id;
    this.root.append(box);
    const data: number[][] = [[], ...spec.series.map(() => [])];
    const plot = new uPlot(
      {
        title: spec.title,
        width: this.width(),
        height: 180,
        scales: { x: { time: false }, ...(spec.range ? { y: { range: spec.range } } : {}) },
        axes: [{ label: 's' }, { label: spec.unit, size: 60 }],
        series: [
          { label: 's' },
          ...spec.series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dash ? [6, 4] : undefined, spanGaps: true })),
        ],
      },
      data as uPlot.AlignedData,
      box,
    );
    this.charts.set(spec.id, { plot, data });
  }

  private width() {
    return Math.max(320, this.root.clientWidth - 24);
  }

  private resize() {
    for (const c of this.charts.values()) c.plot.setSize({ width: this.width(), height: 180 });
  }

  /** Redraws the load charts from the current run's seconds and the previous run's. */
  showLoad(current: Second[], before: Second[] | null) {
    const n = Math.max(current.length, before?.length ?? 0);
    const x = Array.from({ length: n }, (_, i) => i + 1);
    const at = (s: Second[] | null | undefined, i: number, f: (s: Second) => number) =>
      s && i < s.length ? f(s[i]) : (null as unknown as number);
    const col = (s: Second[] | null, f: (s: Second) => number) => x.map((_, i) => at(s, i, f));
    this.set('rps', [x, col(current, (s) => s.sent), col(current, (s) => s.ok), col(before, (s) => s.sent)]);
    this.set('latency', [x, col(current, (s) => s.p50_ms), col(current, (s) => s.p95_ms), col(current, (s) => s.p99_ms), col(before, (s) => s.p95_ms), col(before, (s) => s.p99_ms)]);
    this.set('errors', [x, col(current, (s) => s.failed), col(before, (s) => s.failed)]);
  }

  /** Appends one second of the metrics stream to the signal charts (the last 5 minutes). */
  addSample(sample: Sample) {
    const pg = sample.postgres;
    // Summed over the instances: the pools together are what PostgreSQL sees.
    const sum = (name: string) => sample.services.reduce((total, s) => total + (s.metrics[name] ?? 0), 0);
    this.append('pg', sample.at, [pg?.by_state['active'] ?? 0, pg?.by_state['idle'] ?? 0, pg?.by_state['idle in transaction'] ?? 0, pg?.opened_per_second ?? 0]);
    this.append('pool', sample.at, [sum('db_pool_in_use'), sum('db_pool_waiting'), sum('http_requests_in_flight')]);
    const cpuOf = (instance: number) => sample.services.find((s) => s.instance === instance)?.cpu ?? (null as unknown as number);
    this.append('cpu', sample.at, [pg?.cpu ?? (null as unknown as number), cpuOf(1), cpuOf(2), cpuOf(3), cpuOf(4)]);
    if (this.redis) this.addRedis(sample);
    if (this.replica) {
      const r = sample.replica;
      const or = (v: number | null | undefined) => v ?? NONE;
      this.append('replica-lag', sample.at, [or(r?.replay_lag_seconds), r?.apply_delay_ms == null ? NONE : r.apply_delay_ms / 1000]);
      this.append('replica-wal', sample.at, [r?.lag_bytes == null ? NONE : r.lag_bytes / 1024]);
      this.append('replica-cpu', sample.at, [or(pg?.cpu), or(r?.cpu)]);
    }
    for (const { id, panel } of this.panels) {
      const values = panel.series.map((series, j) => {
        const from = sample.services.filter((s) => s.up && (series.instance === null || s.instance === series.instance));
        if (from.length === 0) return null as unknown as number;
        const value = from.reduce((total, s) => total + (s.metrics[series.metric] ?? 0), 0);
        if (!series.rate) return value;
        // A counter: its increase per second since the previous sample (a restart resets it).
        const key = `${id}/${j}`;
        const last = this.lastValues.get(key);
        this.lastValues.set(key, { at: sample.at, value });
        if (!last || sample.at <= last.at || value < last.value) return null as unknown as number;
        return (value - last.value) / (sample.at - last.at);
      });
      this.append(id, sample.at, values);
    }
  }

  /** One second of Redis INFO on the Redis charts: gaps where Redis did not answer, and
   *  before the first rates (they need two samples). maxmemory 0 is no limit: no line. */
  private addRedis(sample: Sample) {
    const r = sample.redis;
    const or = (v: number | null | undefined) => v ?? NONE;
    // A counter since Redis started: its increase per second (a restarted Redis resets it).
    const last = this.lastValues.get('redis/rejected');
    let refused = NONE;
    if (r) {
      this.lastValues.set('redis/rejected', { at: sample.at, value: r.rejected_writes });
      if (last && sample.at > last.at && r.rejected_writes >= last.value) refused = (r.rejected_writes - last.value) / (sample.at - last.at);
    }
    this.append('redis-ops', sample.at, [or(r?.ops_per_second), or(r?.hits_per_second), or(r?.misses_per_second)]);
    this.append('redis-ratio', sample.at, [r?.hit_ratio == null ? NONE : r.hit_ratio * 100]);
    this.append('redis-memory', sample.at, [r ? r.used_memory / MIB : NONE, r && r.maxmemory > 0 ? r.maxmemory / MIB : NONE]);
    this.append('redis-pressure', sample.at, [or(r?.evicted_per_second), refused, or(r?.clients)]);
  }

  /** Ids of the Redis charts while the open scenario has Redis (the browser test reads them). */
  redisIds(): string[] {
    return this.specs.filter((s) => s.id.startsWith('redis-')).map((s) => s.id);
  }

  /** Ids of the replication charts while the open scenario has a replica. */
  replicaIds(): string[] {
    return this.specs.filter((s) => s.id.startsWith('replica-')).map((s) => s.id);
  }

  /** How many points a series of the named chart holds (the browser test reads it). */
  points(id: string, series = 1): number {
    return this.charts.get(id)?.data[series]?.filter((v) => v !== null && v !== undefined).length ?? 0;
  }

  /** The values of a series of the named chart, gaps as null (the browser test reads them). */
  values(id: string, series = 1): (number | null)[] {
    return this.charts.get(id)?.data[series] ?? [];
  }

  clearSignals() {
    for (const spec of this.specs.filter((s) => !LOAD_IDS.includes(s.id))) this.set(spec.id, [[], ...spec.series.map(() => [])]);
    this.lastValues.clear();
  }

  private set(id: string, data: number[][]) {
    const chart = this.charts.get(id);
    if (!chart) return; // no scenario open yet, or not one of its charts
    chart.data = data;
    chart.plot.setData(data as uPlot.AlignedData);
    chart.plot.root.dataset.points = String(this.points(id));
  }

  private append(id: string, x: number, values: number[]) {
    const chart = this.charts.get(id);
    if (!chart) return;
    const data = chart.data.map((col, i) => [...col, i === 0 ? x : values[i - 1]].slice(-300));
    this.set(id, data);
  }
}
