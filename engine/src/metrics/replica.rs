//! The streaming replica's side of the samples: how far behind the primary it is (time and
//! WAL bytes), its state on the primary and its current apply delay.

use super::PgProbe;

/// One second of the streaming replica: how far behind the primary it is and why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplicaSample {
    /// `pg_stat_replication.state` on the primary (`streaming`, `catchup`, ...), or `down`
    /// when the primary shows no standby on the slot.
    pub state: String,
    /// How old the data the replica serves is: 0 when it has replayed all the primary wrote;
    /// else the primary's `replay_lag` (flush on the primary to replay on the standby,
    /// reported every second), or, before a report, the time since the last replayed
    /// commit. None when the standby cannot be asked.
    pub replay_lag_seconds: Option<f64>,
    /// WAL the primary has written and the standby not yet replayed:
    /// `pg_current_wal_lsn()` on the primary minus `pg_last_wal_replay_lsn()` on the standby.
    pub lag_bytes: Option<i64>,
    /// The standby's current `recovery_min_apply_delay`.
    pub apply_delay_ms: Option<i64>,
    /// The replica's CPU (cores) and memory, over its postmaster and children (None on the
    /// first sample, or when this process cannot see its processes).
    pub cpu: Option<f64>,
    pub rss_bytes: Option<u64>,
}

/// A long-lived monitoring connection to the streaming replica; the primary's side of the lag
/// is read through the primary's [`PgProbe`] (no second lab session on the primary).
pub struct ReplicaProbe {
    standby: tokio_postgres::Client,
}

impl ReplicaProbe {
    pub async fn connect(replica_admin_url: &str) -> Result<ReplicaProbe, tokio_postgres::Error> {
        let (standby, connection) =
            tokio_postgres::connect(replica_admin_url, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        Ok(ReplicaProbe { standby })
    }

    /// The replica's lag and apply delay now (CPU and memory are the collector's).
    pub async fn sample(&self, primary: &PgProbe) -> Result<ReplicaSample, tokio_postgres::Error> {
        let row = primary
            .client
            .query_one(
                "SELECT pg_current_wal_lsn()::text, \
                 (SELECT state FROM pg_stat_replication WHERE application_name = $1), \
                 (SELECT extract(epoch FROM replay_lag)::float8 FROM pg_stat_replication \
                  WHERE application_name = $1)",
                &[&crate::lab::REPLICA_SLOT],
            )
            .await?;
        let primary_lsn: String = row.get(0);
        let state: Option<String> = row.get(1);
        let reported_lag: Option<f64> = row.get(2);
        let row = self
            .standby
            .query_one(
                "SELECT pg_wal_lsn_diff($1::text::pg_lsn, pg_last_wal_replay_lsn())::bigint, \
                 extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, \
                 (SELECT setting::bigint FROM pg_settings \
                  WHERE name = 'recovery_min_apply_delay')",
                &[&primary_lsn],
            )
            .await?;
        let lag_bytes: Option<i64> = row.get(0);
        let since_replay: Option<f64> = row.get(1);
        let lag_bytes = lag_bytes.map(|b| b.max(0));
        Ok(ReplicaSample {
            state: state.unwrap_or_else(|| "down".to_string()),
            replay_lag_seconds: replica_lag_seconds(lag_bytes, reported_lag, since_replay),
            lag_bytes,
            apply_delay_ms: row.get(2),
            cpu: None,
            rss_bytes: None,
        })
    }
}

/// The replica's lag in seconds: none when it has replayed everything (an idle primary's
/// `replay_lag` keeps its last value; the time since the last replayed commit keeps growing),
/// else what the primary measured, else the time since the last replayed commit.
fn replica_lag_seconds(
    lag_bytes: Option<i64>,
    reported: Option<f64>,
    since_replay: Option<f64>,
) -> Option<f64> {
    match lag_bytes {
        Some(0) => Some(0.0),
        Some(_) => reported.or(since_replay).map(|s| s.max(0.0)),
        None => None,
    }
}

/// The replica's state now, for a one-off look (`sdlab replica <id>`): connects to both
/// servers, samples once and disconnects.
///
/// # Errors
/// When either server cannot be reached.
pub async fn replica_status(
    primary_admin_url: &str,
    replica_admin_url: &str,
) -> Result<ReplicaSample, tokio_postgres::Error> {
    let primary = PgProbe::connect(primary_admin_url, "postgres").await?;
    let replica = ReplicaProbe::connect(replica_admin_url).await?;
    replica.sample(&primary).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_that_replayed_everything_has_no_lag_whatever_its_last_report_said() {
        assert_eq!(
            replica_lag_seconds(Some(0), Some(2.0), Some(60.0)),
            Some(0.0)
        );
        assert_eq!(
            replica_lag_seconds(Some(512), Some(0.6), Some(60.0)),
            Some(0.6)
        );
        assert_eq!(replica_lag_seconds(Some(512), None, Some(1.5)), Some(1.5));
        assert_eq!(replica_lag_seconds(None, Some(1.0), None), None);
    }
}
