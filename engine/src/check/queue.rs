//! What a queue lesson's check measures (`[check] restart_at`, `[check.drain]`,
//! `[check.queue_depth]`): a worker crashed and an instance redeployed during the load,
//! the queue's depth sampled every second of it, and, after it, the wait until the work is
//! done. Judged into "work drained after the load" and "queue depth during the load".
//!
//! The work is counted on the scenario's own database (the drain's SQL, e.g. orders not yet
//! fulfilled), never in the service's logs or metrics: a service cannot report work it did
//! not do. What a crash loses (entries acked before the work, tasks spawned in the killed
//! instance) is work that never finishes, so it shows on the drain line.

use std::time::{Duration, Instant};

use redis_server_embedded::Reply;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use super::evaluate::result;
use super::LineResult;
use crate::lab::{Role, Running};
use crate::process::ServiceProcess;

/// After the load: how much work was left, and how long the lab waited for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    pub left: i64,
    pub waited: Duration,
}

/// The queue's depth over the load: the largest sample and its second (None: the key never
/// existed while the load ran).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Depth {
    pub max: Option<(u64, u32)>,
    pub samples: u32,
}

/// What `restart_at` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Crash {
    /// These processes (e.g. "worker 1") were killed at `at` and answered again.
    Done { at: Duration, what: Vec<String> },
    /// Nothing was killed, or a restart failed, and why.
    Failed(String),
}

/// The queue lesson's observations (all None when the scenario asks for none of it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueObs {
    pub drain: Option<Result<Drained, String>>,
    pub depth: Option<Result<Depth, String>>,
    pub crash: Option<Crash>,
}

/// The depth of `key` in one round trip: a list's length; a stream's most-behind consumer
/// group (`lag` + `pending`: not yet delivered plus delivered and not acked), or its length
/// without a group or where Redis cannot tell the lag; -1 when the key does not exist.
const DEPTH_SCRIPT: &str = r"
local k = KEYS[1]
local t = redis.call('TYPE', k)['ok']
if t == 'none' then return -1 end
if t == 'list' then return redis.call('LLEN', k) end
if t ~= 'stream' then return redis.error_reply('the queue key ' .. k .. ' is a ' .. t) end
local len = redis.call('XLEN', k)
local groups = redis.call('XINFO', 'GROUPS', k)
if #groups == 0 then return len end
local most = 0
for _, g in ipairs(groups) do
  local lag, pending = false, 0
  for i = 1, #g, 2 do
    if g[i] == 'lag' then lag = g[i + 1] end
    if g[i] == 'pending' then pending = g[i + 1] end
  end
  local d = len
  if type(lag) == 'number' then d = lag + pending end
  if d > most then most = d end
end
return most
";

/// The depth of `key` now (None: no such key).
pub async fn depth_now(port: u16, key: &str) -> Result<Option<u64>, String> {
    let reply = redis_server_embedded::command(port, &["EVAL", DEPTH_SCRIPT, "1", key])
        .await
        .map_err(|e| e.to_string())?;
    match reply {
        Reply::Integer(n) if n < 0 => Ok(None),
        Reply::Integer(n) => Ok(Some(n.unsigned_abs())),
        other => Err(format!(
            "unexpected reply: {}",
            other.text().unwrap_or_default()
        )),
    }
}

/// Samples the depth of `key` every second until `stop` is cancelled.
pub async fn sample_depth(
    port: u16,
    key: String,
    stop: CancellationToken,
) -> Result<Depth, String> {
    let started = Instant::now();
    let mut depth = Depth::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = stop.cancelled() => return Ok(depth),
            _ = tick.tick() => {}
        }
        let second = started.elapsed().as_secs() as u32;
        if let Some(n) = depth_now(port, &key).await? {
            if depth.max.is_none_or(|(m, _)| n > m) {
                depth.max = Some((n, second));
            }
        }
        depth.samples += 1;
    }
}

/// Waits `at` into the load, then kills worker 1 with SIGKILL (a crash: what it had taken and
/// not finished is its group's to retry) and stops instance 1 with SIGTERM (a deploy: it
/// answers what it was answering, then exits, dropping any task it spawned), and starts each
/// again. The new processes are returned: the check keeps them (they answer
/// on the old ports) until it ends.
pub async fn crash_after(
    at: Duration,
    worker_down: Duration,
    running: &Running,
) -> (Crash, Vec<ServiceProcess>) {
    tokio::time::sleep(at).await;
    let mut fresh = Vec::new();
    let mut roles = Vec::new();
    if !running.workers.is_empty() {
        roles.push(Role::Worker);
    }
    roles.push(Role::Instance);
    // Both signalled before either restarts: the moment is the same for both.
    for role in &roles {
        let signal = match role {
            Role::Worker => libc::SIGKILL,
            Role::Instance => libc::SIGTERM,
        };
        running.kill(*role, 0, signal);
    }
    // The instance first, at once (a deploy); the worker after `worker_down`.
    for role in roles.iter().rev().copied() {
        if role == Role::Worker && !worker_down.is_zero() {
            tokio::time::sleep(worker_down).await;
        }
        match running.restart(role, 0).await {
            Ok(p) => fresh.push((role, p)),
            Err(e) => {
                let fresh = fresh.into_iter().map(|(_, p)| p).collect();
                return (
                    Crash::Failed(format!("restart after the crash: {e}")),
                    fresh,
                );
            }
        }
    }
    // Named worker first, as they were signalled.
    fresh.reverse();
    let what = fresh
        .iter()
        .map(|(role, _)| match role {
            Role::Worker if worker_down.is_zero() => "worker 1".to_string(),
            Role::Worker => format!("worker 1 (down {} ms)", worker_down.as_millis()),
            Role::Instance => "instance 1".to_string(),
        })
        .collect();
    let fresh = fresh.into_iter().map(|(_, p)| p).collect();
    (Crash::Done { at, what }, fresh)
}

/// Polls `sql` (one integer: the work not done yet) on `database_url` every 250 ms until it
/// says 0 or `within` has passed.
pub async fn drain(database_url: &str, sql: &str, within: Duration) -> Result<Drained, String> {
    let started = Instant::now();
    let mut conn = sqlx::PgConnection::connect(database_url)
        .await
        .map_err(|e| format!("connect to PostgreSQL: {e}"))?;
    loop {
        let left: i64 = sqlx::query_scalar::<_, Option<i64>>(sql)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| format!("the drain query failed: {e}"))?
            .unwrap_or(0);
        if left <= 0 || started.elapsed() >= within {
            return Ok(Drained {
                left,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// "work drained after the load": nothing left within `within`.
pub fn drain_line(obs: &QueueObs, within: Duration, hint: &str) -> LineResult {
    let required = format!("0 left within {:.0} s", within.as_secs_f64());
    let crash = match &obs.crash {
        Some(Crash::Done { at, what }) => {
            format!(
                " ({} restarted at {:.1} s)",
                what.join(" and "),
                at.as_secs_f64()
            )
        }
        _ => String::new(),
    };
    let (measured, passed) = match (&obs.crash, &obs.drain) {
        (Some(Crash::Failed(why)), _) => (why.clone(), false),
        (_, None) => ("not measured".to_string(), false),
        (_, Some(Err(e))) => (e.clone(), false),
        (_, Some(Ok(d))) if d.left > 0 => (
            format!(
                "{} left after {:.1} s{crash}",
                d.left,
                d.waited.as_secs_f64()
            ),
            false,
        ),
        (_, Some(Ok(d))) => (
            format!("0 left after {:.1} s{crash}", d.waited.as_secs_f64()),
            true,
        ),
    };
    result(
        "work drained after the load".to_string(),
        measured,
        required,
        passed,
        hint,
    )
}

/// "queue depth during the load": at most `max` entries at every sampled second.
pub fn depth_line(obs: &QueueObs, key: &str, max: u64, hint: &str) -> LineResult {
    let (measured, passed) = match &obs.depth {
        None => ("not measured".to_string(), false),
        Some(Err(e)) => (format!("not read: {e}"), false),
        Some(Ok(Depth { max: None, samples })) => (
            format!("no key {key:?} in Redis in {samples} samples (nothing was queued)"),
            false,
        ),
        Some(Ok(Depth {
            max: Some((n, second)),
            samples,
        })) => (
            format!("at most {n} (second {second}, {samples} samples)"),
            *n <= max,
        ),
    };
    result(
        format!("queue depth of {key} during the load"),
        measured,
        format!("<= {max}"),
        passed,
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_left_after_the_drain_fails_and_names_the_crash() {
        let obs = QueueObs {
            drain: Some(Ok(Drained {
                left: 4,
                waited: Duration::from_secs(20),
            })),
            depth: None,
            crash: Some(Crash::Done {
                at: Duration::from_secs(6),
                what: vec!["worker 1".into(), "instance 1".into()],
            }),
        };
        let line = drain_line(&obs, Duration::from_secs(20), "lost");
        assert!(!line.passed);
        assert_eq!(
            line.measured,
            "4 left after 20.0 s (worker 1 and instance 1 restarted at 6.0 s)"
        );
        let done = QueueObs {
            drain: Some(Ok(Drained {
                left: 0,
                waited: Duration::from_millis(1500),
            })),
            ..obs
        };
        assert!(drain_line(&done, Duration::from_secs(20), "lost").passed);
        let failed = QueueObs {
            crash: Some(Crash::Failed("restart: exited".into())),
            ..done
        };
        assert!(!drain_line(&failed, Duration::from_secs(20), "lost").passed);
    }

    #[tokio::test]
    async fn depth_is_a_groups_lag_plus_pending_a_streams_length_or_a_lists_length() {
        let dir = tempfile::tempdir().unwrap();
        let redis = redis_server_embedded::Redis::start(redis_server_embedded::RedisOptions::new(
            dir.path(),
        ))
        .await
        .unwrap();
        let port = redis.port();
        let run = |args: &'static [&'static str]| async move {
            redis_server_embedded::command(port, args).await.unwrap()
        };
        assert_eq!(depth_now(port, "orders").await.unwrap(), None, "no key yet");
        for _ in 0..5 {
            run(&["XADD", "orders", "*", "order", "1"]).await;
        }
        assert_eq!(
            depth_now(port, "orders").await.unwrap(),
            Some(5),
            "no group: its length"
        );
        run(&["XGROUP", "CREATE", "orders", "fulfilment", "0"]).await;
        // Two delivered and not acked (pending), three not delivered (lag).
        run(&[
            "XREADGROUP",
            "GROUP",
            "fulfilment",
            "w1",
            "COUNT",
            "2",
            "STREAMS",
            "orders",
            ">",
        ])
        .await;
        assert_eq!(depth_now(port, "orders").await.unwrap(), Some(5));
        // Acked entries left in the stream are done: they no longer count.
        let Reply::Array(Some(pending)) =
            run(&["XPENDING", "orders", "fulfilment", "-", "+", "10"]).await
        else {
            panic!("XPENDING");
        };
        for entry in pending {
            let Reply::Array(Some(fields)) = entry else {
                panic!("entry")
            };
            let id = fields[0].text().unwrap();
            redis_server_embedded::command(port, &["XACK", "orders", "fulfilment", id.as_str()])
                .await
                .unwrap();
        }
        assert_eq!(
            depth_now(port, "orders").await.unwrap(),
            Some(3),
            "lag 3, pending 0"
        );
        run(&["LPUSH", "jobs", "a", "b"]).await;
        assert_eq!(depth_now(port, "jobs").await.unwrap(), Some(2));
        run(&["SET", "plain", "x"]).await;
        assert!(depth_now(port, "plain").await.is_err(), "not a queue");
    }

    #[test]
    fn a_queue_deeper_than_its_bound_or_never_seen_fails() {
        let line = |depth| {
            let obs = QueueObs {
                depth: Some(Ok(depth)),
                ..QueueObs::default()
            };
            depth_line(&obs, "orders", 200, "bound")
        };
        assert!(
            line(Depth {
                max: Some((150, 9)),
                samples: 20
            })
            .passed
        );
        let deep = line(Depth {
            max: Some((640, 12)),
            samples: 20,
        });
        assert!(!deep.passed);
        assert_eq!(deep.measured, "at most 640 (second 12, 20 samples)");
        assert!(
            !line(Depth {
                max: None,
                samples: 20
            })
            .passed
        );
    }
}
