//! Progress of long operations (init database, seed rows, build service, start), reported
//! as plain events so the CLI can draw bars, the API can stream them, and tests can read them.

use std::sync::Arc;
use std::time::Duration;

/// The steps of bringing a scenario up. The database's (clean up, init, seed) and the code's
/// (prepare, build) run at the same time; migrations and start follow both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    CleanStale,
    InitDatabase,
    SeedRows,
    PrepareWorkspace,
    BuildService,
    ApplyMigrations,
    StartService,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::CleanStale => "clean up a crashed run",
            Step::InitDatabase => "init database",
            Step::SeedRows => "seed rows",
            Step::PrepareWorkspace => "prepare workspace",
            Step::BuildService => "build service",
            Step::ApplyMigrations => "apply migrations",
            Step::StartService => "start service",
        }
    }
}

#[derive(Debug, Clone)]
pub enum Event {
    Started(Step),
    /// A step finished; `note` says what it did ("cached", "built in 6.2 s", ...).
    Finished {
        step: Step,
        took: Duration,
        note: String,
    },
    Failed {
        step: Step,
        error: String,
    },
    /// Free text along the way ("found a stale server (pid 123), stopped it").
    Info(String),
}

/// Where progress goes. Cheap to clone; the default sink drops events.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(Event) + Send + Sync>);

impl Progress {
    pub fn new(f: impl Fn(Event) + Send + Sync + 'static) -> Progress {
        Progress(Arc::new(f))
    }

    pub fn none() -> Progress {
        Progress::new(|_| {})
    }

    pub fn emit(&self, event: Event) {
        (self.0)(event)
    }

    pub fn info(&self, text: impl Into<String>) {
        self.emit(Event::Info(text.into()))
    }

    /// Runs `f` as `step`, reporting start, finish (with the note `f` returns) or failure.
    pub async fn step<T, E: std::fmt::Display>(
        &self,
        step: Step,
        f: impl std::future::Future<Output = Result<(T, String), E>>,
    ) -> Result<T, E> {
        self.emit(Event::Started(step));
        let started = std::time::Instant::now();
        match f.await {
            Ok((value, note)) => {
                self.emit(Event::Finished {
                    step,
                    took: started.elapsed(),
                    note,
                });
                Ok(value)
            }
            Err(e) => {
                self.emit(Event::Failed {
                    step,
                    error: e.to_string(),
                });
                Err(e)
            }
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

/// The steps under way, in the order they started: steps overlap (the seed runs while the
/// service builds), so a status names them all ("seed rows + build service").
#[derive(Debug, Default)]
pub struct ActiveSteps(Vec<Step>);

impl ActiveSteps {
    /// Follows one event; `Info` changes nothing.
    pub fn follow(&mut self, event: &Event) {
        match event {
            Event::Started(step) => self.0.push(*step),
            Event::Finished { step, .. } | Event::Failed { step, .. } => {
                self.0.retain(|s| s != step)
            }
            Event::Info(_) => {}
        }
    }

    /// "seed rows + build service", or None when no step runs.
    pub fn label(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|s| s.label())
                .collect::<Vec<_>>()
                .join(" + ")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_steps_are_named_in_the_order_they_started() {
        let mut active = ActiveSteps::default();
        assert_eq!(active.label(), None);
        active.follow(&Event::Started(Step::SeedRows));
        active.follow(&Event::Started(Step::BuildService));
        active.follow(&Event::Info("ignored".into()));
        assert_eq!(active.label().as_deref(), Some("seed rows + build service"));
        active.follow(&Event::Failed {
            step: Step::SeedRows,
            error: "x".into(),
        });
        assert_eq!(active.label().as_deref(), Some("build service"));
    }
}
