//! A real Redis run by the lab: binary lookup, a generated config in a lab-owned dir,
//! foreground start on a free loopback port, readiness by PING, INFO, and stop on drop.
//!
//! The central type is [`Redis`], a guard over the running `redis-server`. Layout:
//! - `binary`: finding redis-server (`$SDLAB_REDIS_BIN` -> `/usr/bin/redis-server` -> `$PATH`);
//! - `config`: the generated `redis.conf` and the eviction policies Redis knows;
//! - `resp`: just enough RESP to send a command and read its reply (PING, INFO, tests);
//! - `server`: start, wait for PING, stop;
//! - `stale`: finding and stopping a redis-server a crashed run left in a dir.

mod binary;
mod config;
mod error;
mod resp;
mod server;
mod stale;

pub use binary::{find_binary, find_binary_in};
pub use config::POLICIES;
pub use error::Error;
pub use resp::{parse_info, Reply};
pub use server::{command, info, server_alive, Redis, RedisOptions};
pub use stale::stop_stale;
