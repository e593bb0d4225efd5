//! Errors of the embedded nginx: each says what was attempted and what to do about it.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("nginx is not installed (looked at {tried}). Install it with `sudo apt-get install nginx`, or set SDLAB_NGINX_BIN to an nginx binary")]
    NotFound { tried: String },
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("nginx config line {line}: `{text}` listens on something other than 127.0.0.1; write `listen {{{{listen}}}};` and the lab fills in a free loopback port")]
    NotLoopback { line: usize, text: String },
    #[error("nginx -t rejected the configuration:\n{output}")]
    Invalid { output: String },
    #[error("nginx exited during start-up ({status}). Its error log:\n{log}")]
    Exited { status: String, log: String },
    #[error("nginx did not accept connections on 127.0.0.1:{port} within {waited:?}. Its error log:\n{log}")]
    NotReady {
        port: u16,
        waited: Duration,
        log: String,
    },
    #[error("nginx did not load the new configuration within {waited:?}. Its error log:\n{log}")]
    ReloadTimeout { waited: Duration, log: String },
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
