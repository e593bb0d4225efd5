//! PostgreSQL's side of the samples: sessions by state, new sessions per second, the
//! server's `max_connections`, and the server log read through SQL.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct PgSample {
    /// Sessions of the scenario's database by `pg_stat_activity.state` (active, idle, ...).
    pub by_state: BTreeMap<String, i64>,
    /// `pg_stat_database.sessions`: sessions ever opened on the database.
    pub sessions_total: i64,
    /// New sessions per second since the previous sample.
    pub opened_per_second: f64,
    /// CPU of the postmaster and all its backends, in cores.
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
    /// Client sessions on the whole server (every database, this probe excluded), against
    /// `max_connections`: the ceiling that "too many clients" errors hit.
    pub server_sessions: i64,
    /// The server's `max_connections`.
    pub max_connections: Option<i64>,
}

/// A long-lived monitoring connection to PostgreSQL (one session, so it does not count in
/// the sessions it measures).
pub struct PgProbe {
    pub(super) client: tokio_postgres::Client,
    database: String,
}

impl PgProbe {
    pub async fn connect(
        admin_url: &str,
        database: &str,
    ) -> Result<PgProbe, tokio_postgres::Error> {
        let (client, connection) =
            tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(PgProbe {
            client,
            database: database.to_string(),
        })
    }

    pub async fn sample(&mut self) -> Result<PgSample, tokio_postgres::Error> {
        let mut s = PgSample::default();
        let rows = self
            .client
            .query(
                "SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid() GROUP BY 1",
                &[&self.database],
            )
            .await?;
        for row in rows {
            s.by_state.insert(row.get(0), row.get(1));
        }
        let row = self
            .client
            .query_one(
                "SELECT count(*) FILTER (WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()), \
                        current_setting('max_connections')::bigint FROM pg_stat_activity",
                &[],
            )
            .await?;
        s.server_sessions = row.get(0);
        s.max_connections = Some(row.get(1));
        s.sessions_total = self.sessions_total().await?;
        Ok(s)
    }

    /// The size in bytes of the server's log (`start.log` in the data directory, where the
    /// lab's PostgreSQL writes it), read through SQL so an attached lab process can read it
    /// too. Needs a superuser session, which the lab's admin URL is.
    pub async fn server_log_size(&self) -> Result<i64, tokio_postgres::Error> {
        let row = self
            .client
            .query_one(
                "SELECT coalesce((pg_stat_file('start.log', true)).size, 0)",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// How many times `needle` occurs in the server's log after byte `from`.
    pub async fn count_in_server_log(
        &self,
        from: i64,
        needle: &str,
    ) -> Result<u64, tokio_postgres::Error> {
        let size = self.server_log_size().await?;
        if size <= from {
            return Ok(0);
        }
        let row = self
            .client
            .query_one(
                "SELECT pg_read_binary_file('start.log', $1, $2, true)",
                &[&from, &(size - from)],
            )
            .await?;
        let bytes: Option<Vec<u8>> = row.get(0);
        let text = String::from_utf8_lossy(bytes.as_deref().unwrap_or_default());
        Ok(text.matches(needle).count() as u64)
    }

    /// `pg_stat_database.sessions` for the database. Sessions report their start when they
    /// flush statistics (at the latest when they end), so short-lived ones are all counted.
    pub async fn sessions_total(&self) -> Result<i64, tokio_postgres::Error> {
        // Statistics are cached per transaction; a fresh snapshot sees other sessions' flushes.
        self.client
            .batch_execute("SELECT pg_stat_clear_snapshot()")
            .await?;
        let row = self
            .client
            .query_one(
                "SELECT coalesce(sum(sessions), 0)::bigint FROM pg_stat_database WHERE datname = $1",
                &[&self.database],
            )
            .await?;
        Ok(row.get(0))
    }
}
