//! Logging: plain `tracing` lines on stderr, each tagged with the instance id.

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
    let instance = std::env::var("INSTANCE_ID")
        .ok()
        .filter(|id| !id.trim().is_empty())
        .unwrap_or_else(|| "1".to_owned());
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
