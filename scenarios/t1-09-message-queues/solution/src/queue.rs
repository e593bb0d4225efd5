//! The order queue: the Redis stream `orders`, read by the consumer group `fulfilment`.
//!
//! A stream keeps each entry until it is deleted; a consumer group hands each entry to one
//! consumer (a worker) and remembers it as pending until that worker acks it (XACK). An
//! entry whose worker died stays pending, and another worker takes it over with XAUTOCLAIM
//! once it has been idle long enough: nothing taken is lost, at the price of sometimes doing
//! it twice (hence the idempotency key in `fulfilment.rs`).

use crate::models::NewOrder;
use sdlab_kit::redis::{self, Value};
use sdlab_kit::{Cache, CacheError, CacheOptions, KitError};
use std::time::Duration;

/// The stream's key (the lab watches its depth) and the workers' group.
pub const STREAM: &str = "orders";
pub const GROUP: &str = "fulfilment";

/// SOLUTION (bounded queue): at most this many orders wait (queued or being shipped). The
/// workers ship about 60 a second, so 200 is about three seconds of work: a burst beyond it
/// is refused with 429 at once, instead of being promised and shipped minutes later while
/// Redis's memory grows.
pub const MAX_BACKLOG: u64 = 200;

/// SOLUTION (retries): an entry pending for this long belongs to a worker that died (or
/// hangs); another worker claims it. Well above the 250 ms a shipment takes, so a live
/// worker's entries are not taken from it.
pub const CLAIM_AFTER: Duration = Duration::from_secs(5);

/// How many entries a worker takes at once (and ships concurrently).
pub const BATCH: usize = 8;

/// A connection to the queue. Cloning is cheap.
#[derive(Clone)]
pub struct OrderQueue {
    cache: Cache,
}

/// One entry: its stream ID and the order it carries (None when it does not parse).
pub struct Entry {
    pub id: String,
    pub order: Option<NewOrder>,
}

impl OrderQueue {
    /// Connects and makes sure the stream and its group exist.
    pub async fn connect(url: &str) -> Result<OrderQueue, KitError> {
        Self::with_timeout(url, Duration::from_millis(500)).await
    }

    /// A connection for the worker's blocking reads (XREADGROUP BLOCK waits up to a second:
    /// on the shared connection it would hold up the acks behind it).
    pub async fn connect_reader(url: &str) -> Result<OrderQueue, KitError> {
        Self::with_timeout(url, Duration::from_secs(3)).await
    }

    async fn with_timeout(url: &str, response_timeout: Duration) -> Result<OrderQueue, KitError> {
        let cache = Cache::connect(
            url,
            CacheOptions {
                response_timeout,
                connection_timeout: Duration::from_secs(2),
            },
        )
        .await?;
        let queue = OrderQueue { cache };
        // The group reads the stream from its start; creating it twice is no error.
        let created = queue
            .cache
            .query::<()>(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        if let Err(e) = created {
            if !e.to_string().contains("BUSYGROUP") {
                tracing::warn!("XGROUP CREATE: {e}");
            }
        }
        Ok(queue)
    }

    /// Orders waiting: not delivered yet, or delivered and not acked (acked ones are deleted).
    pub async fn backlog(&self) -> Result<u64, CacheError> {
        self.cache.query(redis::cmd("XLEN").arg(STREAM)).await
    }

    /// Adds the order at the end of the queue.
    pub async fn push(&self, order: &NewOrder) -> Result<(), CacheError> {
        let json = serde_json::to_string(order).unwrap_or_default();
        self.cache
            .query::<String>(
                redis::cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("order")
                    .arg(json),
            )
            .await
            .map(|_| ())
    }

    /// SOLUTION (retries): entries pending longer than `CLAIM_AFTER`, now this consumer's.
    pub async fn claim_stale(&self, consumer: &str) -> Result<Vec<Entry>, CacheError> {
        let reply: Value = self
            .cache
            .query(
                redis::cmd("XAUTOCLAIM")
                    .arg(STREAM)
                    .arg(GROUP)
                    .arg(consumer)
                    .arg(CLAIM_AFTER.as_millis() as u64)
                    .arg("0-0")
                    .arg("COUNT")
                    .arg(BATCH),
            )
            .await?;
        // [next start, [[id, [field, value]], ...], [deleted ids]]
        Ok(match reply {
            Value::Array(parts) => parts.into_iter().nth(1).map(entries).unwrap_or_default(),
            _ => Vec::new(),
        })
    }

    /// New entries for this consumer, waiting up to a second when there are none.
    pub async fn read_new(&self, consumer: &str) -> Result<Vec<Entry>, CacheError> {
        let reply: Value = self
            .cache
            .query(
                redis::cmd("XREADGROUP")
                    .arg("GROUP")
                    .arg(GROUP)
                    .arg(consumer)
                    .arg("COUNT")
                    .arg(BATCH)
                    .arg("BLOCK")
                    .arg(1000)
                    .arg("STREAMS")
                    .arg(STREAM)
                    .arg(">"),
            )
            .await?;
        // [[stream, [[id, [field, value]], ...]]], or nil after the block
        Ok(match reply {
            Value::Array(streams) => streams
                .into_iter()
                .flat_map(|s| match s {
                    Value::Array(parts) => {
                        parts.into_iter().nth(1).map(entries).unwrap_or_default()
                    }
                    _ => Vec::new(),
                })
                .collect(),
            _ => Vec::new(),
        })
    }

    /// SOLUTION (ack after the work): the entry is done: acked (it leaves the pending list,
    /// nobody will retry it) and deleted (the stream holds only work still to do).
    pub async fn done(&self, id: &str) -> Result<(), CacheError> {
        self.cache
            .query::<i64>(redis::cmd("XACK").arg(STREAM).arg(GROUP).arg(id))
            .await?;
        self.cache
            .query::<i64>(redis::cmd("XDEL").arg(STREAM).arg(id))
            .await
            .map(|_| ())
    }
}

/// `[[id, [field, value, ...]], ...]` into entries; the order is the `order` field's JSON.
fn entries(list: Value) -> Vec<Entry> {
    let Value::Array(items) = list else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut pair) = item else {
                return None;
            };
            let fields = pair.pop()?;
            let id = text(&pair.pop()?)?;
            let order = match fields {
                Value::Array(kv) => kv
                    .chunks(2)
                    .find(|c| c.first().and_then(text).as_deref() == Some("order"))
                    .and_then(|c| c.get(1).and_then(text))
                    .and_then(|json| serde_json::from_str(&json).ok()),
                _ => None,
            };
            Some(Entry { id, order })
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}
