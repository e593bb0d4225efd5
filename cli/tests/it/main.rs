//! End-to-end tests of `sdlab` with real PostgreSQL, real builds and real load: scenario
//! t1-01's broken service fails its check with the guide's symptoms, the solution and other
//! correct fixes pass, the tempting wrong fixes fail, starts are cached, and a killed lab
//! leaves nothing behind.
//!
//! All tests share one lab home (so the 1M-row seed is made once) and one build dir; nextest
//! runs them one at a time (.config/nextest.toml) because they judge latency under load.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used)]

mod golden;
mod harness;
mod learner_parity;
mod lifecycle;
mod open;
mod prometheus;
mod redis;
mod reliability;
mod scaffold;
mod scenario_t1_01;
mod scenario_t1_03;
mod scenario_t1_04;
mod summary;
