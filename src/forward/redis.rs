//! The Redis Streams sink: `XADD`s each event to a stream whose key is made from the event, with
//! an entry id derived from the store's sequence (`{sequence}-0`), so that a delivery made again
//! (a crash before its outcome was recorded) cannot add a second entry: Redis refuses an id
//! that is not greater than the stream's last, and an entry already there with that id and the
//! event's eventId is the event, delivered before.
//!
//! Deliveries do not reach a stream in sequence order (orders go in parallel; an order's events
//! go in eventDate order; a dead letter is retried later), so a refused id may also be an event
//! that was never added. Such an event is added after the stream's last entry (an id
//! `{last}-*`, on the last entry's first part) and a marker key, `{stream}:late:{eventId}`, is
//! set to that id for `marker_ttl`, so that a second attempt finds it too. All of it is one Lua
//! script, so it is atomic in Redis. Nothing is lost; only an entry trimmed by `MAXLEN` (or a
//! marker expired) before an attempt made again is added twice.
//!
//! Each entry holds the fields `eventId`, `eventType`, `orderId` (when the event has one),
//! `dialect`, `source` (`seller`, or `reconciled` for a repair), `traceparent` and `tracestate`
//! (when passed on) and `body`, the event as received.
//! Connects on first use, and again after a failure.

use std::borrow::Cow;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use super::error::RedisStep;
use super::{ForwardError, Sent, render};
use crate::config::sinks::SinkTls;
use crate::secret::Secret;
use crate::store::Delivery;
use crate::traces::TraceContext;
use crate::traces::context::{TRACEPARENT, TRACESTATE};

/// `XADD` with the sequence's id; on a refusal, the check that tells a duplicate from an event
/// that comes out of sequence order, which is added after the last entry and marked.
///
/// KEYS: the stream, the marker. ARGV: the entry id, `MAXLEN` (empty: none), the marker's
/// lifetime in seconds, the eventId, then the fields and values.
const ADD: &str = r"
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
local function xadd(id)
  if ARGV[2] == '' then
    return redis.pcall('XADD', KEYS[1], id, unpack(fields))
  end
  return redis.pcall('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], id, unpack(fields))
end
local added = xadd(ARGV[1])
if type(added) ~= 'table' then
  return {'added', added}
end
if not string.find(added.err, 'equal or smaller', 1, true) then
  return added
end
local same = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #same == 1 then
  local entry = same[1][2]
  for i = 1, #entry, 2 do
    if entry[i] == 'eventId' and entry[i + 1] == ARGV[4] then
      return {'duplicate', ARGV[1]}
    end
  end
end
local marked = redis.call('GET', KEYS[2])
if marked then
  return {'duplicate', marked}
end
local info = redis.call('XINFO', 'STREAM', KEYS[1])
local last = '0-0'
for i = 1, #info, 2 do
  if info[i] == 'last-generated-id' then last = info[i + 1] end
end
local late = xadd(string.match(last, '^(%d+)-') .. '-*')
if type(late) == 'table' then
  return late
end
redis.call('SET', KEYS[2], late, 'EX', ARGV[3])
return {'late', late}
";

/// A Redis Streams producer.
pub(crate) struct RedisSink {
    url: Secret,
    stream: String,
    max_len: Option<u64>,
    marker_ttl: Duration,
    script: redis::Script,
    /// The sink's CAs and client certificate, for `rediss://`; `None`: the system's roots.
    tls: Option<redis::TlsCertificates>,
    connection: Mutex<Option<MultiplexedConnection>>,
}

impl std::fmt::Debug for RedisSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisSink")
            .field("stream", &self.stream)
            .field("max_len", &self.max_len)
            .finish_non_exhaustive()
    }
}

impl RedisSink {
    /// A sink adding to `stream` (a template) on the server at `url`, trimmed to about
    /// `max_len` entries when set; a late entry's marker lives `marker_ttl`.
    pub(crate) fn new(
        url: Secret,
        stream: String,
        max_len: Option<u64>,
        marker_ttl: Duration,
        tls: &SinkTls,
    ) -> Self {
        RedisSink {
            url,
            stream,
            max_len,
            marker_ttl,
            script: redis::Script::new(ADD),
            tls: tls.is_set().then(|| super::tls::redis(tls)),
            connection: Mutex::new(None),
        }
    }

    /// Connects and asks the server for a `PING`.
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        let mut connection = self.connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
            .map_err(|source| ForwardError::Redis {
                step: RedisStep::Connect,
                source,
            })?;
        Ok("connected; PING answered".to_owned())
    }

    async fn connection(&self) -> Result<MultiplexedConnection, ForwardError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        // rediss:// needs the process-wide rustls provider; a second install is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = match &self.tls {
            None => redis::Client::open(self.url.expose()),
            Some(tls) => redis::Client::build_with_tls(self.url.expose(), tls.clone()),
        }
        .map_err(|source| ForwardError::Redis {
            step: RedisStep::Connect,
            source,
        })?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let connection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|source| ForwardError::Redis {
                step: RedisStep::Connect,
                source,
            })?;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Adds one event to its stream; an entry already there is reported as a duplicate.
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        let mut connection = self.connection().await?;
        let stream = render(&self.stream, delivery);
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&stream)
            .key(format!("{stream}:late:{}", delivery.event_id.as_str()))
            .arg(entry_id(delivery.sequence))
            .arg(self.max_len.map(|max| max.to_string()).unwrap_or_default())
            .arg(self.marker_ttl.as_secs().max(1))
            .arg(delivery.event_id.as_str());
        for (field, value) in fields(delivery, trace) {
            invocation.arg(field).arg(value.as_ref());
        }
        let outcome: Result<(String, String), _> = invocation.invoke_async(&mut connection).await;
        match outcome {
            Ok((what, id)) => {
                if what == "late" {
                    tracing::debug!(stream, id, event_id = %delivery.event_id, "added after the stream's last entry");
                }
                Ok(Sent {
                    duplicate: what == "duplicate",
                })
            }
            Err(source) => {
                // A refusal by the server leaves the connection fine; anything else, connect again.
                if !matches!(source.kind(), redis::ErrorKind::Server(_)) {
                    *self.connection.lock().await = None;
                }
                Err(ForwardError::Redis {
                    step: RedisStep::Add(stream),
                    source,
                })
            }
        }
    }
}

/// The entry id of the event stored at `sequence`.
fn entry_id(sequence: i64) -> String {
    format!("{sequence}-0")
}

/// An entry's fields, in the order they are written.
fn fields<'a>(
    delivery: &'a Delivery,
    trace: Option<&'a TraceContext>,
) -> Vec<(&'static str, Cow<'a, [u8]>)> {
    let text = |value: &'a str| Cow::Borrowed(value.as_bytes());
    let mut fields = vec![
        ("eventId", text(delivery.event_id.as_str())),
        ("eventType", text(delivery.event_type.as_str())),
    ];
    if let Some(order) = &delivery.order_id {
        fields.push(("orderId", text(order.as_str())));
    }
    fields.push(("dialect", text(delivery.dialect.as_str())));
    fields.push(("source", text(delivery.source.as_str())));
    if let Some(trace) = trace {
        fields.push((TRACEPARENT, Cow::Owned(trace.traceparent().into_bytes())));
        if let Some(state) = trace.tracestate() {
            fields.push((TRACESTATE, text(state)));
        }
    }
    fields.push(("body", Cow::Borrowed(&delivery.body[..])));
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_id_is_the_sequence() {
        assert_eq!(entry_id(1), "1-0");
        assert_eq!(entry_id(9_007_199_254_740_993), "9007199254740993-0");
    }
}
