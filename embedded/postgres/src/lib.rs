//! A real PostgreSQL server for the lab. The central type is [`PgServer`]: a guard for one
//! lab-owned cluster, initialised once (`initdb`), started on a free port on 127.0.0.1 and
//! stopped and reaped when dropped. It runs through the `postgresql_embedded` crate, on binaries
//! found by [`find_binaries`]: `$SDLAB_PG_BIN` -> a system install -> a download (feature
//! `download`).
//!
//! # Layout
//! - `server`: [`PgOptions`] and [`PgServer`]: the start sequence, settings, URL, stop.
//! - `binaries`: [`find_binaries`] and [`BinarySource`]: where the server binaries come from.
//! - `install`: the installation dir of links (or, as root, privilege-dropping wrappers).
//! - `standby`: [`PgServer::start_standby`]: a streaming hot standby (pg_basebackup, a slot), kept
//!   between starts.
//! - `process`: postmaster pids: identify, stop, reap; [`stop_stale`] for crashed runs.
//! - `error`: [`Error`].

mod binaries;
mod error;
mod install;
mod process;
mod server;
mod standby;

pub use binaries::{find_binaries, find_binaries_in, BinarySearch, BinarySource};
pub use error::Error;
pub use process::stop_stale;
pub use server::{PgOptions, PgServer, SUPERUSER};
pub use standby::{StandbyOptions, StandbyStart};
