//! The load plan: what to send, how fast, for how long, and where.
//!
//! These are the validated inputs of [`crate::load::run`]; scenario files and the CLI convert
//! their own config into a [`LoadPlan`]. [`LoadPlan::validate`] checks the numbers here; the
//! request templates are checked where they are compiled (`params.rs`) and the target where
//! it is parsed (`send.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use super::LoadError;

/// Everything one load run needs.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadPlan {
    /// Base URLs such as `http://127.0.0.1:PORT` (optionally with a path prefix); only
    /// loopback hosts are accepted. With several, arrivals take them in turn (client-side
    /// round robin): the lab's way to spread load over instances that have no load balancer
    /// in front. With a balancer (nginx), this is its one URL.
    pub targets: Vec<String>,
    /// Run one after another; the run lasts the sum of their durations.
    pub stages: Vec<Stage>,
    /// Weighted request templates; each arrival picks one.
    pub mix: Vec<RequestTemplate>,
    /// Per-request deadline, counted from the moment the request is sent.
    pub timeout: Duration,
    /// Open model: arrivals beyond this many outstanding requests are counted as
    /// [`ErrorKind::Dropped`](super::ErrorKind::Dropped) and not sent.
    pub max_in_flight: usize,
    /// Seeds template choice and parameter generation: same seed, same requests.
    pub seed: u64,
    pub model: Model,
    /// The session tokens of the users logged in before the run (user N's at N - 1), for the
    /// templates with `auth`; None when the scenario has no logins.
    pub sessions: Option<Sessions>,
}

/// Session tokens by user (user N's at index N - 1), shared by every request of a run.
pub type Sessions = std::sync::Arc<Vec<String>>;

/// What a load plan is pointed at: one base URL or several (see [`LoadPlan::targets`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadTargets(pub Vec<String>);

impl From<String> for LoadTargets {
    fn from(url: String) -> Self {
        LoadTargets(vec![url])
    }
}

impl From<Vec<String>> for LoadTargets {
    fn from(urls: Vec<String>) -> Self {
        LoadTargets(urls)
    }
}

/// How arrivals are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    /// Arrivals follow the stages' rates whatever the server does (the default).
    Open,
    /// `users` virtual users each send a request as soon as their previous one finished.
    /// Stage rates are ignored; the stages only set the run's duration.
    Closed { users: usize },
}

/// A stretch of the run at a constant or linearly ramping arrival rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    /// Requests per second at the end of the stage.
    pub rate: f64,
    /// Requests per second at the start of the stage; `None` means constant at `rate`.
    pub rate_from: Option<f64>,
}

impl Stage {
    /// A stage at a constant rate.
    pub fn constant(duration: Duration, rate: f64) -> Self {
        Self {
            duration,
            rate,
            rate_from: None,
        }
    }

    /// A stage whose rate ramps linearly from `from` to `to`.
    pub fn ramp(duration: Duration, from: f64, to: f64) -> Self {
        Self {
            duration,
            rate: to,
            rate_from: Some(from),
        }
    }

    /// Rate at the start of the stage.
    pub fn start_rate(&self) -> f64 {
        self.rate_from.unwrap_or(self.rate)
    }
}

/// One kind of request in the mix.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    /// Shown in the per-template summary.
    pub name: String,
    /// Relative frequency in the mix.
    pub weight: u32,
    pub method: Method,
    /// Starts with `/`; `{param}` placeholders are replaced by percent-encoded values,
    /// e.g. `/users/{user_id}/posts`.
    pub path: String,
    /// JSON with `{param}` placeholders, inserted verbatim (quote string values yourself).
    /// Sent with `content-type: application/json`.
    pub body: Option<String>,
    /// Generators for the placeholders, by name.
    pub params: BTreeMap<String, ParamGen>,
    /// Sent as a logged-in user: with `Authorization: Bearer <token>` of the user its `user`
    /// parameter names (user N's token is `LoadPlan::sessions[N - 1]`; see `sessions.rs`).
    pub auth: bool,
    /// Extra request headers, name and value; a value may hold `{param}` placeholders,
    /// rendered as they are (e.g. `Idempotency-Key: order-{order}`, `X-Client-Id: {client}`).
    pub headers: Vec<(String, String)>,
    /// A client that retries: an attempt that times out is sent again as it was (same path,
    /// body and headers, so the same `Idempotency-Key`) at once, up to this many times. Each
    /// resend is recorded under its own kind, `<name> (retry)` ([`retry_name`]), so the
    /// kind's own figures stay those of first attempts. Open model only; 0 for most.
    pub retries: u32,
}

/// The request kind a template's resends are recorded under (see
/// [`RequestTemplate::retries`]).
pub fn retry_name(template: &str) -> String {
    format!("{template} (retry)")
}

impl RequestTemplate {
    /// A `GET` template without parameters.
    pub fn get(name: &str, path: &str) -> Self {
        Self {
            name: name.to_owned(),
            weight: 1,
            method: Method::Get,
            path: path.to_owned(),
            body: None,
            params: BTreeMap::new(),
            auth: false,
            headers: Vec::new(),
            retries: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

/// How a placeholder's value is drawn for each request.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamGen {
    /// An integer in `min..=max`, all equally likely.
    Uniform { min: i64, max: i64 },
    /// A rank in `1..=n` with probability proportional to `1 / rank^s`: rank 1 is the
    /// hottest key. `s = 0` is uniform; `s` around 1 is typical of real traffic.
    Zipf { n: u64, s: f64 },
    /// One of the strings, all equally likely.
    Choice(Vec<String>),
    /// `start`, `start + 1`, ... per template, in arrival order.
    Sequence { start: i64 },
}

impl LoadPlan {
    /// The run's length: the sum of the stage durations.
    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// Checks the stages, timeout and limits. Templates and target are checked by `run`.
    pub fn validate(&self) -> Result<(), LoadError> {
        if self.targets.is_empty() {
            return Err(LoadError::plan("targets", "expected at least one base URL"));
        }
        if self.stages.is_empty() {
            return Err(LoadError::plan("stages", "expected at least one stage"));
        }
        for (i, stage) in self.stages.iter().enumerate() {
            check_rate(&format!("stages[{i}].rate"), stage.rate)?;
            if let Some(from) = stage.rate_from {
                check_rate(&format!("stages[{i}].rate_from"), from)?;
            }
        }
        if self.duration().is_zero() {
            return Err(LoadError::plan(
                "stages[].duration",
                "expected a total duration above zero",
            ));
        }
        if self.timeout.is_zero() {
            return Err(LoadError::plan("timeout", "expected a timeout above zero"));
        }
        if self.max_in_flight == 0 {
            return Err(LoadError::plan("max_in_flight", "expected at least 1"));
        }
        if let Model::Closed { users: 0 } = self.model {
            return Err(LoadError::plan(
                "model.users",
                "expected at least 1 virtual user",
            ));
        }
        if let (Model::Closed { .. }, Some(t)) =
            (self.model, self.mix.iter().find(|t| t.retries > 0))
        {
            return Err(LoadError::plan(
                format!("mix ({}).retries", t.name),
                "retries need the open model (a closed model's user waits for each answer)",
            ));
        }
        Ok(())
    }
}

fn check_rate(field: &str, rate: f64) -> Result<(), LoadError> {
    if rate.is_finite() && rate >= 0.0 {
        Ok(())
    } else {
        Err(LoadError::plan(
            field,
            format!("expected a finite rate >= 0 requests/s, got {rate}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> LoadPlan {
        LoadPlan {
            targets: vec!["http://127.0.0.1:1".into()],
            stages: vec![Stage::constant(Duration::from_secs(1), 10.0)],
            mix: vec![RequestTemplate::get("root", "/")],
            timeout: Duration::from_secs(1),
            max_in_flight: 10,
            seed: 1,
            model: Model::Open,
            sessions: None,
        }
    }

    #[test]
    fn a_negative_rate_names_its_field() {
        let mut p = plan();
        p.stages
            .push(Stage::ramp(Duration::from_secs(1), -1.0, 5.0));
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("stages[1].rate_from"), "{err}");
    }

    #[test]
    fn a_valid_plan_passes() {
        assert!(plan().validate().is_ok());
    }
}
