//! Drives the lab's own load generator (`sdlab_engine::load`) the way the benchmarks need and
//! prints one JSON line with what it measured.
//!
//! `--rate 0` is a closed-model run at full speed with `--connections` virtual users (the
//! throughput comparison with oha and wrk); a positive rate is an open-model run at that
//! fixed rate (the accuracy comparison). The JSON carries the run's start time so the
//! accuracy script can compute the ideal latencies of the same schedule.

use std::time::Duration;

use clap::Parser;
use sdlab_engine::load::{self, LoadPlan, Model, RequestTemplate, Stage};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Args {
    /// Base URL, e.g. http://127.0.0.1:8080
    #[arg(long)]
    url: String,
    /// Path to request.
    #[arg(long, default_value = "/")]
    path: String,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests per second (open model); 0 runs closed at full speed.
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Virtual users of the closed model / in-flight cap of the open model.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Tokio worker threads of the generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Also print the reference percentiles of the same schedule against an ideal server
    /// that only stalls (see `sdlab_bench::ideal_latency_us`); for open-model runs on `/stall`.
    #[arg(long)]
    reference: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // One thread means one thread: the scheduler, the requests and the statistics all run on
    // it, as wrk -t1 does. (A one-worker multi-thread runtime would add the `block_on` thread.)
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    let (model, rate, max_in_flight) = if args.rate > 0.0 {
        (Model::Open, args.rate, 10_000)
    } else {
        (
            Model::Closed {
                users: args.connections,
            },
            1.0,
            args.connections,
        )
    };
    let plan = LoadPlan {
        targets: vec![args.url.clone()],
        stages: vec![Stage::constant(Duration::from_secs(args.duration), rate)],
        mix: vec![RequestTemplate::get("bench", &args.path)],
        timeout: Duration::from_secs(5),
        max_in_flight,
        seed: 1,
        model,
        sessions: None,
    };
    let started_us = sdlab_bench::now_us();
    let summary = runtime.block_on(load::run(plan, None, CancellationToken::new()))?;
    let us = |d: Duration| d.as_micros() as u64;
    let line = serde_json::json!({
        "started_us": started_us,
        "duration_s": summary.duration.as_secs_f64(),
        "sent": summary.sent,
        "ok": summary.ok,
        "failed": summary.failed,
        "requests_per_s": summary.achieved_rate,
        "p50_us": us(summary.latency.p50),
        "p90_us": us(summary.latency.p90),
        "p99_us": us(summary.latency.p99),
        "p999_us": us(summary.latency.p999),
        "max_us": us(summary.latency.max),
    });
    let mut line = line;
    if args.reference && args.rate > 0.0 {
        let (p50, p99, p999) = sdlab_bench::reference_percentiles(
            started_us,
            args.rate,
            Duration::from_secs(args.duration),
        );
        line["reference"] = serde_json::json!({ "p50_us": p50, "p99_us": p99, "p999_us": p999 });
    }
    println!("{line}");
    Ok(())
}
