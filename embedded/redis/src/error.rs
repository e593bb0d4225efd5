//! Errors of the embedded Redis: each says what was attempted and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("redis-server is not installed (looked at {tried}). Install it with `sudo apt-get install -y redis-server` (Debian/Ubuntu; the lab starts its own server, the system one is not used), or set SDLAB_REDIS_BIN to a redis-server binary")]
    NotFound { tried: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("unknown maxmemory-policy `{policy}`: Redis knows {}", crate::POLICIES.join(", "))]
    BadPolicy { policy: String },
    #[error("redis-server exited during start-up ({status}). Its log:\n{log}")]
    Exited { status: String, log: String },
    #[error(
        "redis-server did not answer PING on 127.0.0.1:{port} within {waited:?}. Its log:\n{log}"
    )]
    NotReady {
        port: u16,
        waited: Duration,
        log: String,
    },
    #[error("redis command `{command}` on 127.0.0.1:{port}: {source}")]
    Command {
        command: String,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("redis command `{command}` on 127.0.0.1:{port}: unexpected reply {reply:?}")]
    Reply {
        command: String,
        port: u16,
        reply: String,
    },
}

impl Error {
    pub(crate) fn io(
        what: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { what, path, source }
    }
}
