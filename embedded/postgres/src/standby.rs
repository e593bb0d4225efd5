//! A streaming standby (hot standby, read-only) of a running [`PgServer`]: a physical copy made
//! by `pg_basebackup` with a replication slot, kept between starts and only copied again when
//! it can no longer stream from its slot.

use crate::install::RunAs;
use crate::server::{create_private_dir, data_dir_of, write_private_file};
use crate::{process, Error, PgOptions, PgServer, SUPERUSER};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long `pg_basebackup` may take (the lab's databases are a few hundred MB at most: 0.34 s
/// for 104 MB was measured).
const BASEBACKUP_TIMEOUT: Duration = Duration::from_secs(300);

/// What to start: the standby's own cluster dir and settings, and the slot it streams from.
#[derive(Debug, Clone)]
pub struct StandbyOptions {
    /// Lab-owned directory of the standby (`data/`, `run/`, `install/`, `password`), not the
    /// primary's.
    pub cluster_dir: PathBuf,
    /// `postgresql.conf` settings passed at every start. A hot standby needs
    /// `max_connections` (and a few others) at least as high as its primary's: pass the
    /// primary's settings. `hot_standby = on` is added.
    pub settings: BTreeMap<String, String>,
    /// The replication slot on the primary (created by the copy, kept between starts).
    pub slot: String,
    /// `recovery_min_apply_delay`, written to the standby's `postgresql.auto.conf` (not the
    /// command line) so that `ALTER SYSTEM` + reload can change it while it runs.
    pub apply_delay: Duration,
    /// Copy the primary again even if the kept copy looks usable (the caller saw it not stream).
    pub fresh_copy: bool,
}

/// How a standby start went: whether the primary was copied (`pg_basebackup`) or the kept
/// copy restarted, and how long the copy took.
#[derive(Debug, Clone, Copy)]
pub struct StandbyStart {
    pub copied: bool,
    pub copy_time: Duration,
}

impl PgServer {
    /// Starts a hot standby of this server on its own free port, streaming from `opts.slot`.
    ///
    /// The copy in `opts.cluster_dir` is reused when it is a standby of this very cluster (same
    /// system identifier) and its slot still exists on this server; otherwise the slot is
    /// dropped, the copy removed and a new one made with `pg_basebackup -X stream -C -S slot`.
    /// The connection to the primary (`primary_conninfo`, with this start's port) and the apply
    /// delay are written to the standby's `postgresql.auto.conf` before every start.
    ///
    /// # Errors
    /// [`Error::Basebackup`] with what pg_basebackup said; as [`PgServer::start`] otherwise.
    pub async fn start_standby(
        &self,
        opts: StandbyOptions,
    ) -> Result<(PgServer, StandbyStart), Error> {
        if opts.slot.is_empty()
            || !opts
                .slot
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(Error::InvalidSetting {
                name: "primary_slot_name".to_string(),
                reason: "slot names are lower-case letters, digits and '_'",
            });
        }
        std::fs::create_dir_all(&opts.cluster_dir)
            .map_err(Error::io("create directory", &opts.cluster_dir))?;
        let cluster_dir = opts
            .cluster_dir
            .canonicalize()
            .map_err(Error::io("resolve", &opts.cluster_dir))?;
        let data_dir = data_dir_of(&cluster_dir);
        // A standby a crashed run left running holds the copy: stop it before touching files.
        let stale_dir = cluster_dir.clone();
        tokio::task::spawn_blocking(move || process::stop_stale(&stale_dir))
            .await
            .map_err(|e| Error::Stop {
                pid: 0,
                data_dir: data_dir.clone(),
                message: e.to_string(),
            })??;

        let mut start = StandbyStart {
            copied: false,
            copy_time: Duration::ZERO,
        };
        if opts.fresh_copy || !self.standby_usable(&data_dir, &opts.slot) {
            let started = Instant::now();
            self.copy_to_standby(&cluster_dir, &data_dir, &opts.slot)
                .await?;
            start = StandbyStart {
                copied: true,
                copy_time: started.elapsed(),
            };
        }
        // The superuser's password is the primary's (the catalog is a copy of it).
        let run_as = RunAs::for_data_dir(self.data_dir());
        write_private_file(&cluster_dir.join("password"), self.password(), run_as)?;
        write_standby_settings(
            &data_dir,
            &[
                (
                    "primary_conninfo",
                    format!(
                        "host=127.0.0.1 port={} user={SUPERUSER} password={} application_name={}",
                        self.port(),
                        self.password(),
                        opts.slot
                    ),
                ),
                ("primary_slot_name", opts.slot.clone()),
                (
                    "recovery_min_apply_delay",
                    format!("{}ms", opts.apply_delay.as_millis()),
                ),
            ],
        )?;
        let mut settings = opts.settings.clone();
        settings.insert("hot_standby".to_string(), "on".to_string());
        let server = PgServer::start_with(
            PgOptions {
                cluster_dir,
                settings,
                port: None,
            },
            self.binaries().clone(),
        )
        .await?;
        Ok((server, start))
    }

    /// Whether the copy in `data_dir` can stream from this server again: it is a standby, of
    /// this cluster (the system identifier, the first 8 bytes of `global/pg_control`, is the
    /// same: a re-initialised primary makes a copy useless), and its slot still exists here
    /// (`pg_replslot/<slot>`, which holds the WAL it has not received yet).
    fn standby_usable(&self, data_dir: &Path, slot: &str) -> bool {
        let identifier = |dir: &Path| -> Option<[u8; 8]> {
            let bytes = std::fs::read(dir.join("global/pg_control")).ok()?;
            bytes.get(..8)?.try_into().ok()
        };
        data_dir.join("PG_VERSION").is_file()
            && data_dir.join("standby.signal").is_file()
            && self.data_dir().join("pg_replslot").join(slot).is_dir()
            && identifier(data_dir).is_some()
            && identifier(data_dir) == identifier(self.data_dir())
    }

    /// Drops the slot if it exists, removes the old copy and makes a new one with
    /// `pg_basebackup` (as the server's user, through the primary's installation dir).
    async fn copy_to_standby(
        &self,
        cluster_dir: &Path,
        data_dir: &Path,
        slot: &str,
    ) -> Result<(), Error> {
        let bin = self.cluster_dir().join("install").join("bin");
        if self.data_dir().join("pg_replslot").join(slot).is_dir() {
            // A slot without its standby holds WAL on the primary forever: drop it first.
            let out = self
                .replication_tool(&bin, "pg_receivewal")
                .args(["--drop-slot", "--slot", slot])
                .output()
                .await
                .map_err(Error::io("run pg_receivewal in", &bin))?;
            if !out.status.success() {
                tracing::warn!(
                    "dropping replication slot {slot}: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
        }
        if data_dir.exists() {
            std::fs::remove_dir_all(data_dir).map_err(Error::io("remove old standby", data_dir))?;
        }
        let run_as = RunAs::for_data_dir(self.data_dir());
        if run_as != RunAs::CurrentUser {
            use std::os::unix::fs::PermissionsExt;
            // The server's user must be able to enter the cluster dir (as for the primary).
            let mode = std::fs::metadata(cluster_dir)
                .map_err(Error::io("inspect", cluster_dir))?
                .permissions()
                .mode();
            std::fs::set_permissions(cluster_dir, std::fs::Permissions::from_mode(mode | 0o001))
                .map_err(Error::io("chmod", cluster_dir))?;
            run_as.check_reachable(cluster_dir)?;
        }
        create_private_dir(data_dir, run_as)?;
        let mut command = self.replication_tool(&bin, "pg_basebackup");
        command
            .arg("-D")
            .arg(data_dir)
            .args(["-R", "-X", "stream", "-c", "fast", "-C", "-S", slot]);
        let out = tokio::time::timeout(BASEBACKUP_TIMEOUT, command.output())
            .await
            .map_err(|_| Error::Basebackup {
                data_dir: data_dir.to_path_buf(),
                message: format!("no answer after {BASEBACKUP_TIMEOUT:?}"),
            })?
            .map_err(Error::io("run pg_basebackup in", &bin))?;
        if !out.status.success() {
            // Half a copy is no standby: the next start copies again.
            let _ = std::fs::remove_dir_all(data_dir);
            return Err(Error::Basebackup {
                data_dir: data_dir.to_path_buf(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// `pg_basebackup` or `pg_receivewal` of the primary's installation dir, connected to this
    /// server over TCP as the superuser (the password in the environment, not the arguments).
    fn replication_tool(&self, bin: &Path, tool: &str) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(bin.join(tool));
        command
            .args(["-h", "127.0.0.1", "-p", &self.port().to_string()])
            .args(["-U", SUPERUSER, "-w"])
            .env("PGPASSWORD", self.password())
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        command
    }
}

/// Rewrites the standby's `postgresql.auto.conf` with `values` in place of any earlier line
/// for the same settings (what `pg_basebackup -R` and `ALTER SYSTEM` wrote), keeping the rest.
fn write_standby_settings(data_dir: &Path, values: &[(&str, String)]) -> Result<(), Error> {
    let path = data_dir.join("postgresql.auto.conf");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let mut text: String = old
        .lines()
        .filter(|line| {
            let name = line.split(['=', ' ']).next().unwrap_or_default();
            !values.iter().any(|(n, _)| *n == name)
        })
        .map(|line| format!("{line}\n"))
        .collect();
    for (name, value) in values {
        text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
    }
    // Rewriting in place keeps the file's owner (the server's user) and mode.
    std::fs::write(&path, text).map_err(Error::io("write", &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_settings_replace_earlier_lines_and_keep_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("postgresql.auto.conf"),
            "# Do not edit\nprimary_conninfo = 'port=1'\nwork_mem = '8MB'\nrecovery_min_apply_delay = '2s'\n",
        )
        .unwrap();
        write_standby_settings(
            dir.path(),
            &[
                ("primary_conninfo", "port=2 password=it's".to_string()),
                ("recovery_min_apply_delay", "500ms".to_string()),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(dir.path().join("postgresql.auto.conf")).unwrap();
        assert_eq!(
            text,
            "# Do not edit\nwork_mem = '8MB'\nprimary_conninfo = 'port=2 password=it''s'\nrecovery_min_apply_delay = '500ms'\n"
        );
    }
}
