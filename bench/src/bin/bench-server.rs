//! The benchmarks' target: a tiny axum server on 127.0.0.1.
//!
//! `GET /` answers "ok" at once (throughput runs). `GET /stall` answers at once too, except
//! during the stall windows of `sdlab_bench::stall_end`, when it holds every request until the
//! window ends (accuracy runs). It exits by itself after `--lifetime` seconds.

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one; the port is printed as `listening <port>`).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Tokio worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Exit after this many seconds, whatever happens.
    #[arg(long, default_value_t = 600)]
    lifetime: u64,
}

async fn stall() -> &'static str {
    if let Some(end) = sdlab_bench::stall_end(sdlab_bench::now_us()) {
        let wait = end.saturating_sub(sdlab_bench::now_us());
        tokio::time::sleep(Duration::from_micros(wait)).await;
    }
    "ok"
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = Router::new()
            .route("/", get(|| async { "ok" }))
            .route("/stall", get(stall));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
        println!("listening {}", listener.local_addr()?.port());
        let lifetime = tokio::time::sleep(Duration::from_secs(args.lifetime));
        axum::serve(listener, app)
            .with_graceful_shutdown(lifetime)
            .await?;
        Ok(())
    })
}
