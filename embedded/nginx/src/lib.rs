//! A real nginx run by the lab: binary lookup, a generated prefix and config, `nginx -t`
//! validation, foreground start on a free loopback port, reload, and stop on drop.
//!
//! The central type is [`Nginx`], a guard over the running master process. Layout:
//! - `binary`: finding the nginx binary (`$SDLAB_NGINX_BIN` -> `/usr/sbin/nginx` -> `$PATH`);
//! - `config`: the generated `nginx.conf` around the caller's site text, the loopback check;
//! - `server`: start, validate, reload, stop;
//! - `stale`: finding and stopping nginx processes a crashed run left in a prefix.

mod binary;
mod config;
mod error;
mod server;
mod stale;

pub use binary::{find_binary, find_binary_in};
pub use config::{access_log_lines, LISTEN_PLACEHOLDER};
pub use error::Error;
pub use server::{master_alive, validate, Nginx, NginxOptions};
pub use stale::stop_stale;
