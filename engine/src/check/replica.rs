//! Where the check load's reads ran: the primary's and the streaming replica's own counters
//! for the check's database (`pg_stat_database`: transactions and 8 kB pages read), before
//! and after the load. Judged into `[check.replica_reads]` (the replica's share of the pages
//! read) and `[check.primary_reads]` (pages read on the primary per answered request).
//!
//! A hot standby keeps its own `pg_stat_database`: it counts the transactions and pages of
//! the sessions it serves, not the WAL it replays (measured on PostgreSQL 15: 100 summaries
//! read there added 100 transactions and ~200,000 pages on the standby, nothing on the
//! primary). Pages, not transactions, because a read's cost is the pages it reads: a service
//! that sends the cheap reads to the replica and keeps the expensive ones on the primary has
//! most of its transactions on the replica and most of its work still on the primary.
//!
//! Backends report their counters when they go idle, at most once a second, so the last
//! second of the load may still be missing after the check's wait: on both servers alike,
//! which a share and a per-request bound with room tolerate.

use super::LineResult;

/// One server's counters for the check's database at one moment, or their rise over the load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadCounters {
    /// `xact_commit + xact_rollback`.
    pub transactions: i64,
    /// `blks_hit + blks_read`: pages read, from shared buffers or not.
    pub pages: i64,
}

impl ReadCounters {
    /// What happened between `self` (before) and `after` (never below 0: a stats reset).
    pub fn until(self, after: ReadCounters) -> ReadCounters {
        ReadCounters {
            transactions: (after.transactions - self.transactions).max(0),
            pages: (after.pages - self.pages).max(0),
        }
    }
}

/// The primary's and the replica's counters over the check load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaReads {
    pub primary: ReadCounters,
    pub replica: ReadCounters,
}

/// An open connection to the check's database on each server, taken before the load so the
/// connections' own start (catalog lookups) is not counted in it.
pub struct ReadProbe {
    primary: tokio_postgres::Client,
    replica: tokio_postgres::Client,
    before: ReplicaReads,
}

impl ReadProbe {
    /// Connects to both servers (superuser URLs of the check's database) and reads the
    /// counters before the load.
    pub async fn start(primary_url: &str, replica_url: &str) -> Result<ReadProbe, String> {
        let primary = connect(primary_url, "the primary").await?;
        let replica = connect(replica_url, "the replica").await?;
        let mut probe = ReadProbe {
            primary,
            replica,
            before: ReplicaReads::default(),
        };
        probe.before = probe.read().await?;
        Ok(probe)
    }

    /// The counters' rise since [`ReadProbe::start`].
    pub async fn finish(&self) -> Result<ReplicaReads, String> {
        let after = self.read().await?;
        Ok(ReplicaReads {
            primary: self.before.primary.until(after.primary),
            replica: self.before.replica.until(after.replica),
        })
    }

    async fn read(&self) -> Result<ReplicaReads, String> {
        Ok(ReplicaReads {
            primary: counters(&self.primary, "the primary").await?,
            replica: counters(&self.replica, "the replica").await?,
        })
    }
}

async fn connect(url: &str, which: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("connect to {which}: {e}"))?;
    tokio::spawn(connection);
    Ok(client)
}

async fn counters(client: &tokio_postgres::Client, which: &str) -> Result<ReadCounters, String> {
    // Statistics are cached per transaction; a fresh snapshot sees other sessions' reports.
    let row = client
        .query_one(
            "SELECT pg_stat_clear_snapshot()::text, \
                    (xact_commit + xact_rollback)::bigint, (blks_hit + blks_read)::bigint \
             FROM pg_stat_database WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| format!("read pg_stat_database on {which}: {e}"))?;
    Ok(ReadCounters {
        transactions: row.get(1),
        pages: row.get(2),
    })
}

/// `[check.replica_reads]`: the replica read at least `min_share` of the pages both servers
/// read during the load.
pub fn share_line(
    reads: Option<&Result<ReplicaReads, String>>,
    min_share: f64,
    hint: &str,
) -> LineResult {
    let required = format!(">= {:.0}% of pages read", min_share * 100.0);
    let (measured, passed) = match reads {
        None => ("not measured".to_string(), false),
        Some(Err(e)) => (format!("not measured: {e}"), false),
        Some(Ok(r)) if r.primary.pages + r.replica.pages == 0 => {
            ("nothing read on either server".to_string(), false)
        }
        Some(Ok(r)) => {
            let share = r.replica.pages as f64 / (r.primary.pages + r.replica.pages) as f64;
            (
                format!(
                    "{:.1}% ({} of {} pages; {} of {} transactions)",
                    share * 100.0,
                    r.replica.pages,
                    r.primary.pages + r.replica.pages,
                    r.replica.transactions,
                    r.primary.transactions + r.replica.transactions
                ),
                share >= min_share,
            )
        }
    };
    super::evaluate::result(
        "reads served by the replica".to_string(),
        measured,
        required,
        passed,
        hint,
    )
}

/// `[check.primary_reads]`: pages the primary read per request the load got an answer to, at
/// most `max_per_request`. Per answer, not per request sent: a primary too busy to answer
/// most requests reads little in all, and would otherwise look unloaded.
pub fn primary_line(
    reads: Option<&Result<ReplicaReads, String>>,
    answered: u64,
    max_per_request: f64,
    hint: &str,
) -> LineResult {
    let required = format!("<= {max_per_request:.0}");
    let (measured, passed) = match reads {
        None => ("not measured".to_string(), false),
        Some(Err(e)) => (format!("not measured: {e}"), false),
        Some(Ok(_)) if answered == 0 => ("no request answered".to_string(), false),
        Some(Ok(r)) => {
            let per = r.primary.pages as f64 / answered as f64;
            (
                format!(
                    "{per:.0} ({} pages, {} transactions, {answered} answers)",
                    r.primary.pages, r.primary.transactions
                ),
                per <= max_per_request,
            )
        }
    };
    super::evaluate::result(
        "pages read on the primary per answer".to_string(),
        measured,
        required,
        passed,
        hint,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reads(primary_pages: i64, replica_pages: i64) -> Result<ReplicaReads, String> {
        Ok(ReplicaReads {
            primary: ReadCounters {
                transactions: 10,
                pages: primary_pages,
            },
            replica: ReadCounters {
                transactions: 90,
                pages: replica_pages,
            },
        })
    }

    #[test]
    fn the_share_is_the_replicas_pages_of_both_servers_pages() {
        let line = share_line(Some(&reads(100, 900)), 0.7, "h");
        assert!(
            line.passed && line.measured.starts_with("90.0%"),
            "{line:?}"
        );
        let low = share_line(Some(&reads(900, 100)), 0.7, "h");
        assert!(!low.passed && low.hint.as_deref() == Some("h"), "{low:?}");
        assert!(!share_line(Some(&reads(0, 0)), 0.7, "h").passed);
        assert!(!share_line(None, 0.7, "h").passed);
    }

    #[test]
    fn the_primarys_pages_are_divided_by_the_answers_the_load_got() {
        assert!(primary_line(Some(&reads(20_000, 0)), 1_000, 50.0, "h").passed);
        let heavy = primary_line(Some(&reads(200_000, 0)), 1_000, 50.0, "h");
        assert!(
            !heavy.passed && heavy.measured.starts_with("200 "),
            "{heavy:?}"
        );
        assert!(!primary_line(Some(&reads(0, 0)), 0, 50.0, "h").passed);
    }

    #[test]
    fn a_reset_between_two_readings_counts_as_nothing_read() {
        let before = ReadCounters {
            transactions: 50,
            pages: 5_000,
        };
        assert_eq!(
            before.until(ReadCounters::default()),
            ReadCounters::default()
        );
    }
}
