//! Logging: plain `tracing` lines on stderr, each tagged with the instance id, or JSON lines
//! that a log view can parse and filter by a span's fields (a request id).

use std::fmt;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. RUST_LOG filters as usual (default `info`); INSTANCE_ID
/// (default "1") prefixes every line, because the lab shows several instances' logs side by
/// side. It reads INSTANCE_ID itself so it can run before [`crate::Config::from_env`] and
/// a configuration error is still logged. Calling it twice is harmless (the second call
/// does nothing), which tests rely on.
pub fn init_tracing() {
    let instance = instance_id();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _already_installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Plain text: the lab's log view and a learner's terminal both show it verbatim.
        .with_ansi(false)
        .event_format(InstanceTagged {
            instance,
            inner: Format::default(),
        })
        .try_init();
}

/// Installs a global subscriber writing one JSON object per line on stderr, with the event's
/// fields at the top level (`"message"`, and any `order_id = 7`) and the
/// fields of the spans open at the time: `"span"` (the innermost, e.g. `{"name":"request",
/// "request_id":"..."}`) and `"spans"` (all of them, outermost first). A field recorded on a
/// request's span thus appears on every line logged while serving it. RUST_LOG filters as in
/// [`init_tracing`]; calling it twice is harmless.
pub fn init_tracing_json() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _already_installed = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    // The instance labels the whole process; one event at start says which it is (the lab
    // keeps each instance's log in its own file, so lines need not repeat it).
    tracing::info!(instance = %instance_id(), "logging JSON lines");
}

/// INSTANCE_ID, default "1".
fn instance_id() -> String {
    std::env::var("INSTANCE_ID")
        .ok()
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| "1".to_owned())
}

/// Writes `[instance N] ` and then the default line format.
struct InstanceTagged {
    instance: String,
    inner: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for InstanceTagged
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    Format<Full>: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "[instance {}] ", self.instance)?;
        self.inner.format_event(ctx, writer, event)
    }
}
