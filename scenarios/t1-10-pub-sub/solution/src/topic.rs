//! The topic: the Redis stream `events`, and one consumer group per subscriber.
//!
//! A stream keeps its entries; each consumer group has its own position in it and its own
//! list of entries delivered but not acked (pending). With a group per subscriber, every
//! subscriber gets every event (fan-out), in the stream's order, and a subscriber that was
//! down finds on its return everything it missed: its group's position waited for it.
//! Contrast PUBLISH: Redis hands a message to whoever is subscribed at that instant and
//! forgets it.

use crate::models::Event;
use sdlab_kit::redis::{self, Value};
use sdlab_kit::{Cache, CacheError, CacheOptions, KitError};
use std::time::Duration;

/// The stream's key.
pub const STREAM: &str = "events";

/// How many entries a subscriber takes at once (and handles one after the other, in order).
pub const BATCH: usize = 16;

/// A connection to the topic. Cloning is cheap.
#[derive(Clone)]
pub struct Topic {
    cache: Cache,
}

/// One entry: its stream ID and the event it carries (None when it does not parse).
pub struct Entry {
    pub id: String,
    pub event: Option<Event>,
}

/// SOLUTION (fan-out): the subscriber's own group, named after it. One group shared by all
/// three would hand each event to one of them only: that is a work queue (t1-09), not a topic.
pub fn group_of(subscriber: &str) -> String {
    subscriber.to_string()
}

impl Topic {
    /// Connects (a subscriber's blocking reads wait up to a second: give them room).
    pub async fn connect(url: &str) -> Result<Topic, KitError> {
        let cache = Cache::connect(
            url,
            CacheOptions {
                response_timeout: Duration::from_secs(3),
                connection_timeout: Duration::from_secs(2),
            },
        )
        .await?;
        Ok(Topic { cache })
    }

    /// Makes sure the stream and `subscriber`'s group exist. The group starts at the
    /// stream's beginning ("0"), so events published before the subscriber first started are
    /// its too; creating it twice is no error.
    pub async fn subscribe(&self, subscriber: &str) -> Result<(), CacheError> {
        let created = self
            .cache
            .query::<()>(
                redis::cmd("XGROUP")
                    .arg("CREATE")
                    .arg(STREAM)
                    .arg(group_of(subscriber))
                    .arg("0")
                    .arg("MKSTREAM"),
            )
            .await;
        match created {
            Err(e) if !e.to_string().contains("BUSYGROUP") => Err(e),
            _ => Ok(()),
        }
    }

    /// SOLUTION (publish): appends the event to the stream, where it stays for every group.
    pub async fn publish(&self, event: &Event) -> Result<(), CacheError> {
        let json = serde_json::to_string(event).unwrap_or_default();
        self.cache
            .query::<String>(
                redis::cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("event")
                    .arg(json),
            )
            .await
            .map(|_| ())
    }

    /// `subscriber`'s next entries. `pending` true: the ones delivered to it before and not
    /// acked (what it held when it died), from the start; false: new ones, waiting up to a
    /// second when there are none.
    pub async fn read(&self, subscriber: &str, pending: bool) -> Result<Vec<Entry>, CacheError> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(group_of(subscriber))
            .arg(subscriber)
            .arg("COUNT")
            .arg(BATCH);
        if !pending {
            cmd.arg("BLOCK").arg(1000);
        }
        cmd.arg("STREAMS")
            .arg(STREAM)
            .arg(if pending { "0" } else { ">" });
        let reply: Value = self.cache.query(&cmd).await?;
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

    /// SOLUTION (ack after the work): the entry is handled; it leaves `subscriber`'s pending
    /// list (the other groups keep their own view of it).
    pub async fn ack(&self, subscriber: &str, id: &str) -> Result<(), CacheError> {
        self.cache
            .query::<i64>(
                redis::cmd("XACK")
                    .arg(STREAM)
                    .arg(group_of(subscriber))
                    .arg(id),
            )
            .await
            .map(|_| ())
    }
}

/// `[[id, [field, value, ...]], ...]` into entries; the event is the `event` field's JSON.
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
            let event = match fields {
                Value::Array(kv) => kv
                    .chunks(2)
                    .find(|c| c.first().and_then(text).as_deref() == Some("event"))
                    .and_then(|c| c.get(1).and_then(text))
                    .and_then(|json| serde_json::from_str(&json).ok()),
                _ => None,
            };
            Some(Entry { id, event })
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
