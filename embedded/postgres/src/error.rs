//! The crate's error type: every message says what was attempted and what to do next.

use std::path::PathBuf;

/// What went wrong while finding, initialising, starting or stopping PostgreSQL.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable PostgreSQL server binaries were found in any searched place.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found.\n\
         Searched:\n{searched}\n\
         Fix: install them with `sudo apt-get install -y postgresql` (Debian/Ubuntu), \
         or set SDLAB_PG_BIN to a directory holding initdb, pg_ctl and postgres{download_hint}"
    )]
    BinariesNotFound {
        /// One line per place searched, with why it was rejected.
        searched: String,
        /// Extra advice about the download feature.
        download_hint: &'static str,
    },

    /// A file-system operation on a lab-owned path failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done, e.g. "create directory".
        action: &'static str,
        /// The path it was done to.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// A setting name or value cannot be passed to the server safely.
    #[error("invalid PostgreSQL setting {name:?}: {reason}")]
    InvalidSetting {
        /// The setting's name as given in `PgOptions::settings`.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The cluster exists but its password file is missing or unreadable.
    #[error(
        "the cluster in {data_dir} exists but its password file {password_file} is missing or empty; \
         the lab cannot log in. Delete {data_dir} to re-create the cluster (its data is lost)"
    )]
    PasswordMissing {
        /// The existing data directory.
        data_dir: PathBuf,
        /// Where the password was expected.
        password_file: PathBuf,
    },

    /// Running as root, the server runs as an unprivileged user who cannot reach the cluster dir.
    #[error(
        "running as root, PostgreSQL runs as uid {uid}, which cannot enter {path} (mode {mode:o}); \
         put cluster_dir where other users may traverse (e.g. under /tmp or /var/lib/sdlab)"
    )]
    Unreachable {
        /// The directory that blocks traversal.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// The uid the server runs as.
        uid: u32,
    },

    /// Root needs `setpriv` (util-linux) to drop privileges for initdb and postgres.
    #[error(
        "running as root, the lab runs PostgreSQL as an unprivileged user through `setpriv`, \
         which was not found in /usr/bin or /bin; install util-linux (`sudo apt-get install -y util-linux`)"
    )]
    SetprivMissing,

    /// Another live `PgServer` (in this or another process) owns the cluster.
    #[error(
        "the cluster in {cluster_dir} is in use by another running lab (it holds {cluster_dir}/lock); \
         stop that lab or use its server rather than starting a second one"
    )]
    InUse {
        /// The cluster directory.
        cluster_dir: PathBuf,
    },

    /// initdb failed.
    #[error("initdb of {data_dir} failed: {message}")]
    Init {
        /// The data directory being initialised.
        data_dir: PathBuf,
        /// What initdb and the crate said.
        message: String,
    },

    /// The server did not start or did not become ready before the deadline.
    #[error("PostgreSQL on 127.0.0.1:{port} (data dir {data_dir}) did not start: {message}\n--- end of {log} ---\n{log_tail}")]
    Start {
        /// The port it was asked to listen on.
        port: u16,
        /// The data directory.
        data_dir: PathBuf,
        /// The last error seen.
        message: String,
        /// The server's log file.
        log: PathBuf,
        /// The last lines of that log.
        log_tail: String,
    },

    /// `pg_basebackup` could not copy the primary for a standby.
    #[error(
        "copying the primary into {data_dir} for its standby (pg_basebackup) failed: {message}\n\
         pg_basebackup ships with the PostgreSQL server packages (`sudo apt-get install -y postgresql`)"
    )]
    Basebackup {
        /// The standby's data directory.
        data_dir: PathBuf,
        /// What pg_basebackup said.
        message: String,
    },

    /// The server did not stop.
    #[error("stopping PostgreSQL (pid {pid}, data dir {data_dir}) failed: {message}")]
    Stop {
        /// The postmaster's pid.
        pid: u32,
        /// The data directory.
        data_dir: PathBuf,
        /// What went wrong.
        message: String,
    },

    /// Downloading binaries failed (feature `download`).
    #[error(
        "no PostgreSQL server binaries on this machine, and downloading them into {dir} failed \
         ({message}).\nInstall them: `sudo apt-get install -y postgresql` (Debian/Ubuntu), or set \
         SDLAB_PG_BIN to a directory holding postgres, pg_ctl and initdb"
    )]
    Download {
        /// The cache directory.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
}

impl Error {
    /// An [`Error::Io`] for `action` on `path`.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io {
            action,
            path,
            source,
        }
    }
}
