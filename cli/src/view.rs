//! Drawing for the terminal: step progress (spinners on a TTY, one plain line per step
//! otherwise) and the live one-line-per-second views of `start`, `load` and `check`.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use sdlab_engine::check::fmt_duration;
use sdlab_engine::load::SecondStats;
use sdlab_engine::metrics::Sample;
use sdlab_engine::progress::{Event, Progress, Step};

pub fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::io::stderr().is_terminal()
}

/// Progress events drawn on stderr.
pub fn progress() -> Progress {
    if !interactive() {
        return Progress::new(|event| match event {
            Event::Started(step) => eprintln!("[..] {}", step.label()),
            Event::Finished { step, took, note } => {
                eprintln!("[ok] {} ({:.1} s) {note}", step.label(), took.as_secs_f64())
            }
            Event::Failed { step, .. } => eprintln!("[!!] {} failed", step.label()),
            Event::Info(text) => eprintln!("     {text}"),
        });
    }
    // Steps can run at the same time (the seed while the service builds): a spinner each.
    let multi = MultiProgress::new();
    let bars: Arc<Mutex<HashMap<Step, ProgressBar>>> = Arc::new(Mutex::new(HashMap::new()));
    Progress::new(move |event| {
        let Ok(mut bars) = bars.lock() else { return };
        match event {
            Event::Started(step) => {
                let pb = multi.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                pb.enable_steady_tick(Duration::from_millis(100));
                pb.set_message(step.label());
                bars.insert(step, pb);
            }
            Event::Finished { step, took, note } => {
                if let Some(pb) = bars.remove(&step) {
                    pb.finish_and_clear();
                    multi.remove(&pb);
                }
                let _ = multi.println(format!(
                    "✔ {} ({:.1} s) {note}",
                    step.label(),
                    took.as_secs_f64()
                ));
            }
            Event::Failed { step, .. } => {
                if let Some(pb) = bars.remove(&step) {
                    pb.finish_and_clear();
                    multi.remove(&pb);
                }
                let _ = multi.println(format!("✘ {}", step.label()));
            }
            Event::Info(text) => {
                let _ = multi.println(format!("  {text}"));
            }
        }
    })
}

/// One line for a second of load.
pub fn second_line(s: &SecondStats, sample: Option<&Sample>) -> String {
    let failed: u64 = s.http_errors.values().sum::<u64>() + s.errors.values().sum::<u64>();
    let mut line = format!(
        "{:>4}s  sent {:>4}  ok {:>4}  failed {:>4}  p50 {:>8}  p95 {:>8}  p99 {:>8}  in flight {:>4}",
        s.second,
        s.sent,
        s.ok,
        failed,
        fmt_duration(s.p50),
        fmt_duration(s.p95),
        fmt_duration(s.p99),
        s.in_flight
    );
    if let Some(sample) = sample {
        line.push_str("  |  ");
        line.push_str(&sample_text(sample));
    }
    line
}

/// The scenario's own signals from a metrics sample: per instance (up or down, pool, CPU,
/// memory), then PostgreSQL (sessions by state, sessions against max_connections, CPU).
pub fn sample_text(sample: &Sample) -> String {
    let mut parts = Vec::new();
    let several = sample.services.len() > 1;
    for svc in &sample.services {
        let mut p = Vec::new();
        if several {
            p.push(format!("i{}", svc.instance));
        }
        match &svc.metrics {
            Some(m) => {
                if let Some(size) = m.sum("db_pool_size") {
                    p.push(format!(
                        "pool {size:.0}/{:.0} (in use {:.0}, waiting {:.0})",
                        m.sum("db_pool_max").unwrap_or(0.0),
                        m.sum("db_pool_in_use").unwrap_or(0.0),
                        m.sum("db_pool_waiting").unwrap_or(0.0)
                    ));
                } else {
                    p.push("no pool metrics".to_string());
                }
            }
            None => p.push(format!(
                "DOWN ({})",
                svc.down_reason
                    .as_deref()
                    .unwrap_or("/metrics not answering")
            )),
        }
        if let Some(cpu) = svc.cpu.filter(|_| svc.up) {
            p.push(format!("cpu {cpu:.2}"));
        }
        if let Some(rss) = svc.rss_bytes.filter(|_| svc.up) {
            p.push(format!("mem {} MB", rss / 1_000_000));
        }
        parts.push(p.join(" "));
    }
    if let Some(pg) = &sample.postgres {
        let states: Vec<String> = pg
            .by_state
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let mut p = vec![format!(
            "pg [{}]",
            if states.is_empty() {
                "no sessions".to_string()
            } else {
                states.join(", ")
            }
        )];
        if let Some(max) = pg.max_connections {
            p.push(format!("conns {}/{max}", pg.server_sessions));
        }
        p.push(format!("new conn/s {:.0}", pg.opened_per_second));
        if let Some(cpu) = pg.cpu {
            p.push(format!("cpu {cpu:.2}"));
        }
        if let Some(rss) = pg.rss_bytes {
            p.push(format!("mem {} MB", rss / 1_000_000));
        }
        parts.push(p.join(" "));
    }
    if let Some(r) = &sample.redis {
        let mut p = vec![format!(
            "redis hit {}",
            r.hit_ratio
                .map_or("-".to_string(), |h| format!("{:.0}%", h * 100.0))
        )];
        p.push(format!("ops/s {}", r.ops_per_second));
        let mib = |b: u64| b as f64 / f64::from(1 << 20);
        if r.maxmemory > 0 {
            p.push(format!(
                "mem {:.1}/{:.1} MiB",
                mib(r.used_memory),
                mib(r.maxmemory)
            ));
        } else {
            p.push(format!("mem {:.1} MiB", mib(r.used_memory)));
        }
        p.push(format!(
            "evicted/s {:.0}",
            r.evicted_per_second.unwrap_or(0.0)
        ));
        p.push(format!("OOM {}", r.rejected_writes));
        p.push(format!("clients {}", r.clients));
        parts.push(p.join(" "));
    }
    if let Some(r) = &sample.replica {
        let mut p = vec![format!("replica {}", r.state)];
        p.push(match r.replay_lag_seconds {
            Some(s) => format!("lag {s:.2} s"),
            None => "lag -".to_string(),
        });
        if let Some(bytes) = r.lag_bytes {
            p.push(format!("{} kB behind", bytes / 1000));
        }
        if let Some(ms) = r.apply_delay_ms {
            p.push(format!("delay {ms} ms"));
        }
        if let Some(cpu) = r.cpu {
            p.push(format!("cpu {cpu:.2}"));
        }
        parts.push(p.join(" "));
    }
    parts.join("  |  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sdlab_engine::metrics::{RedisSample, ReplicaSample};

    #[test]
    fn the_live_line_shows_the_replicas_state_lag_and_delay() {
        let sample = Sample {
            replica: Some(ReplicaSample {
                state: "streaming".to_string(),
                replay_lag_seconds: Some(0.52),
                lag_bytes: Some(12_345),
                apply_delay_ms: Some(500),
                cpu: Some(0.31),
                rss_bytes: None,
            }),
            ..Default::default()
        };
        assert_eq!(
            sample_text(&sample),
            "replica streaming lag 0.52 s 12 kB behind delay 500 ms cpu 0.31"
        );
    }

    #[test]
    fn the_live_line_shows_redis_hits_memory_evictions_and_refused_writes() {
        let sample = Sample {
            redis: Some(RedisSample {
                hits_per_second: Some(90.0),
                misses_per_second: Some(10.0),
                hit_ratio: Some(0.9),
                used_memory: 3 << 19,
                maxmemory: 2 << 20,
                evicted_per_second: Some(4.0),
                rejected_writes: 2,
                ops_per_second: 150,
                clients: 3,
                ..RedisSample::default()
            }),
            ..Sample::default()
        };
        assert_eq!(
            sample_text(&sample),
            "redis hit 90% ops/s 150 mem 1.5/2.0 MiB evicted/s 4 OOM 2 clients 3"
        );
    }
}
