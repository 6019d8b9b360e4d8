//! The MQTT sink (MQTT 5 or 3.1.1, through rumqttc): publishes the event's body at QoS 1 to a
//! topic made from the event and waits for the broker's PUBACK; then, when `state_topic` is set,
//! publishes the order's projection as it is stored now (what `orders show --json` prints,
//! without the `suspects` judged at reading time), **retained**, so that a new subscriber sees
//! every order's current state at once. MQTT 5 messages carry `eventId`, `eventType`, `orderId`,
//! `dialect`, `source`, `traceparent` and `tracestate` as user properties and `application/json` as their
//! content type; MQTT 3.1.1 has no properties, only the body.
//!
//! One connection per sink, with a clean session: a task polls rumqttc's event loop, which
//! reports each publish's packet id as it is written, in the order the publishes were asked
//! for, then each PUBACK. Publishes are asked for under a lock that also queues their waiters,
//! so the n-th id written belongs to the n-th waiter. A connection that fails fails every
//! publish still waiting (each is retried by the worker, so a message the broker had already
//! taken may come twice: MQTT cannot deduplicate) and the next delivery connects again.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::v5::mqttbytes::v5::{PubAckReason, PublishProperties};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::error::MqttError;
use super::{ForwardError, Sent, render_with};
use crate::config::sinks::{MqttProtocol, SinkTls};
use crate::secret::Secret;
use crate::store::{Delivery, Store};
use crate::traces::TraceContext;
use crate::traces::context::{TRACEPARENT, TRACESTATE};

/// Requests the event loop takes at once, beyond those in flight.
const REQUEST_CAPACITY: usize = 256;

/// How long a connection may stay idle before a ping.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// An MQTT publisher.
pub(crate) struct MqttSink {
    url: Secret,
    topic: String,
    state_topic: Option<String>,
    protocol: MqttProtocol,
    client_id: String,
    store: Store,
    /// The TLS of an `mqtts://` URL: the system's roots and the sink's CAs and client
    /// certificate; `None` for `mqtt://`.
    tls: Option<Arc<rustls::ClientConfig>>,
    link: tokio::sync::Mutex<Option<Link>>,
}

impl std::fmt::Debug for MqttSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttSink")
            .field("topic", &self.topic)
            .field("state_topic", &self.state_topic)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

/// One message to publish at QoS 1.
struct Message {
    topic: String,
    payload: Bytes,
    retain: bool,
    /// MQTT 5 user properties.
    properties: Vec<(String, String)>,
}

impl MqttSink {
    /// A sink publishing to `topic` (a template), and the retained projection to `state_topic`
    /// when set, read from `store`.
    pub(crate) fn new(
        url: Secret,
        topic: String,
        state_topic: Option<String>,
        protocol: MqttProtocol,
        client_id: String,
        store: Store,
        tls: &SinkTls,
    ) -> anyhow::Result<Self> {
        let tls = super::tls::client_config_if(
            Address::parse(url.expose()).is_ok_and(|address| address.tls),
            tls,
        )?;
        Ok(MqttSink {
            url,
            topic,
            state_topic,
            protocol,
            client_id,
            store,
            tls,
            link: tokio::sync::Mutex::new(None),
        })
    }

    /// Publishes one event, then the order's projection when asked; returns once the broker
    /// acknowledged both.
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        let mut properties = vec![
            ("eventId".to_owned(), delivery.event_id.as_str().to_owned()),
            (
                "eventType".to_owned(),
                delivery.event_type.as_str().to_owned(),
            ),
            ("dialect".to_owned(), delivery.dialect.as_str().to_owned()),
            ("source".to_owned(), delivery.source.as_str().to_owned()),
        ];
        if let Some(order) = &delivery.order_id {
            properties.push(("orderId".to_owned(), order.as_str().to_owned()));
        }
        if let Some(trace) = trace {
            properties.push((TRACEPARENT.to_owned(), trace.traceparent()));
            if let Some(state) = trace.tracestate() {
                properties.push((TRACESTATE.to_owned(), state.to_owned()));
            }
        }
        self.publish(Message {
            topic: render_with(&self.topic, delivery, is_topic_special),
            payload: delivery.body.clone(),
            retain: false,
            properties,
        })
        .await?;
        if let (Some(template), Some(order_id)) = (&self.state_topic, &delivery.order_id) {
            let order = self
                .store
                .order(order_id)
                .await
                .map_err(|source| ForwardError::Store { source })?;
            if let Some(order) = order {
                let payload = serde_json::to_vec(&order)
                    .map_err(|source| ForwardError::Projection { source })?;
                self.publish(Message {
                    topic: render_with(template, delivery, is_topic_special),
                    payload: payload.into(),
                    retain: true,
                    properties: vec![("orderId".to_owned(), order_id.as_str().to_owned())],
                })
                .await?;
            }
        }
        Ok(Sent::default())
    }

    async fn publish(&self, message: Message) -> Result<(), ForwardError> {
        let topic = message.topic.clone();
        let failed = |source| ForwardError::Mqtt {
            topic: topic.clone(),
            source,
        };
        let acked = {
            let mut slot = self.link.lock().await;
            let link = match slot.take().filter(Link::is_alive) {
                Some(link) => link,
                None => self.connect().map_err(failed)?,
            };
            let acked = link.publish(message);
            *slot = Some(link);
            acked
        };
        match acked.map_err(failed)?.await {
            Ok(result) => result.map_err(failed),
            // The connection's task ended without answering: it was stopped.
            Err(_) => Err(failed(MqttError::Closed)),
        }
    }

    /// Connects with a client id of its own (`{client_id}-check`, so that the sink's own
    /// connection is not taken over) and waits for the broker's CONNACK.
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        let failed = |source| ForwardError::MqttConnect { source };
        let (_client, mut events) = self
            .event_loop(format!("{}-check", self.client_id))
            .map_err(failed)?;
        loop {
            if let Happened::Connected = events.poll().await.map_err(failed)? {
                return Ok("the broker accepted the connection".to_owned());
            }
        }
    }

    fn connect(&self) -> Result<Link, MqttError> {
        let (client, events) = self.event_loop(self.client_id.clone())?;
        let pending = Arc::new(Mutex::new(Pending::default()));
        let task = tokio::spawn(drive(events, pending.clone()));
        Ok(Link {
            client,
            pending,
            task,
        })
    }

    /// A client and its event loop, not yet connected (the event loop connects when polled).
    fn event_loop(&self, client_id: String) -> Result<(Client, EventLoop), MqttError> {
        let address = Address::parse(self.url.expose())?;
        let transport = match &self.tls {
            Some(tls) => {
                rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls.clone()))
            }
            None => rumqttc::Transport::tcp(),
        };
        Ok(match self.protocol {
            MqttProtocol::V5 => {
                let mut options =
                    rumqttc::v5::MqttOptions::new(client_id, address.host, address.port);
                options
                    .set_keep_alive(KEEP_ALIVE)
                    .set_clean_start(true)
                    .set_transport(transport);
                if let Some((user, password)) = address.credentials {
                    options.set_credentials(user, password);
                }
                let (client, events) = rumqttc::v5::AsyncClient::new(options, REQUEST_CAPACITY);
                (Client::V5(client), EventLoop::V5(Box::new(events)))
            }
            MqttProtocol::V311 => {
                let mut options = rumqttc::MqttOptions::new(client_id, address.host, address.port);
                options
                    .set_keep_alive(KEEP_ALIVE)
                    .set_clean_session(true)
                    .set_transport(transport);
                if let Some((user, password)) = address.credentials {
                    options.set_credentials(user, password);
                }
                let (client, events) = rumqttc::AsyncClient::new(options, REQUEST_CAPACITY);
                (Client::V311(client), EventLoop::V311(Box::new(events)))
            }
        })
    }
}

/// Whether `c` may not appear in a topic level made from a value: `/` would add a level, `+`
/// and `#` are wildcards.
fn is_topic_special(c: char) -> bool {
    matches!(c, '/' | '+' | '#') || c.is_whitespace() || c.is_control()
}

/// What an `mqtt://` or `mqtts://` URL says.
struct Address {
    host: String,
    port: u16,
    tls: bool,
    credentials: Option<(String, String)>,
}

impl Address {
    fn parse(url: &str) -> Result<Address, MqttError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| MqttError::Url)?;
        let tls = match parsed.scheme() {
            "mqtt" => false,
            "mqtts" => true,
            _ => return Err(MqttError::Url),
        };
        let host = parsed.host_str().ok_or(MqttError::Url)?.to_owned();
        let port = parsed.port().unwrap_or(if tls { 8883 } else { 1883 });
        let decode = |text: &str| {
            percent_encoding::percent_decode_str(text)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = (!parsed.username().is_empty()).then(|| {
            (
                decode(parsed.username()),
                decode(parsed.password().unwrap_or_default()),
            )
        });
        Ok(Address {
            host,
            port,
            tls,
            credentials,
        })
    }
}

/// The publishes of one connection that wait: asked for but not yet written (in order), and
/// written but not yet acknowledged (by packet id). Once the connection failed, why.
#[derive(Default)]
struct Pending {
    unsent: VecDeque<oneshot::Sender<Result<(), MqttError>>>,
    unacked: HashMap<u16, oneshot::Sender<Result<(), MqttError>>>,
    failed: Option<MqttError>,
}

/// A live connection: the client that asks for publishes and the task that polls its event
/// loop (stopped when the link is dropped).
struct Link {
    client: Client,
    pending: Arc<Mutex<Pending>>,
    task: JoinHandle<()>,
}

impl Link {
    fn is_alive(&self) -> bool {
        !self.task.is_finished()
    }

    /// Asks for a publish; the receiver gets the broker's answer.
    fn publish(
        &self,
        message: Message,
    ) -> Result<oneshot::Receiver<Result<(), MqttError>>, MqttError> {
        let (done, acked) = oneshot::channel();
        let mut pending = self
            .pending
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(failure) = &pending.failed {
            return Err(failure.clone());
        }
        self.client.publish(message)?;
        pending.unsent.push_back(done);
        Ok(acked)
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        self.task.abort();
    }
}

enum Client {
    V5(rumqttc::v5::AsyncClient),
    V311(rumqttc::AsyncClient),
}

impl Client {
    fn publish(&self, message: Message) -> Result<(), MqttError> {
        let refused = |source| MqttError::Client(Arc::new(source));
        match self {
            Client::V5(client) => {
                let properties = PublishProperties {
                    payload_format_indicator: Some(1),
                    content_type: Some("application/json".to_owned()),
                    user_properties: message.properties,
                    ..PublishProperties::default()
                };
                client
                    .try_publish_with_properties(
                        message.topic,
                        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                        message.retain,
                        message.payload,
                        properties,
                    )
                    .map_err(|source| MqttError::Client5(Arc::new(source)))
            }
            Client::V311(client) => client
                .try_publish(
                    message.topic,
                    rumqttc::QoS::AtLeastOnce,
                    message.retain,
                    message.payload.to_vec(),
                )
                .map_err(refused),
        }
    }
}

/// What one poll of the event loop told.
enum Happened {
    /// A publish was written with this packet id.
    Written(u16),
    /// The broker answered the publish with this packet id.
    Acked(u16, Result<(), MqttError>),
    /// The broker accepted the connection (its CONNACK).
    Connected,
    /// Anything else (a ping).
    Other,
}

enum EventLoop {
    V5(Box<rumqttc::v5::EventLoop>),
    V311(Box<rumqttc::EventLoop>),
}

impl EventLoop {
    async fn poll(&mut self) -> Result<Happened, MqttError> {
        use rumqttc::Outgoing;
        match self {
            EventLoop::V5(events) => {
                use rumqttc::v5::{Event, mqttbytes::v5::Packet};
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(id))) => Ok(Happened::Written(id)),
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(Happened::Connected),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => Ok(Happened::Acked(
                        ack.pkid,
                        match ack.reason {
                            PubAckReason::Success | PubAckReason::NoMatchingSubscribers => Ok(()),
                            reason => Err(MqttError::Refused(format!("{reason:?}"))),
                        },
                    )),
                    Ok(_) => Ok(Happened::Other),
                    Err(source) => Err(MqttError::Connection5(Arc::new(source))),
                }
            }
            EventLoop::V311(events) => {
                use rumqttc::{Event, Packet};
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Publish(id))) => Ok(Happened::Written(id)),
                    Ok(Event::Incoming(Packet::ConnAck(_))) => Ok(Happened::Connected),
                    Ok(Event::Incoming(Packet::PubAck(ack))) => {
                        Ok(Happened::Acked(ack.pkid, Ok(())))
                    }
                    Ok(_) => Ok(Happened::Other),
                    Err(source) => Err(MqttError::Connection(Arc::new(source))),
                }
            }
        }
    }
}

/// Polls the event loop, matching written packet ids to waiters and PUBACKs to them, until the
/// connection fails; then every waiter gets the failure.
async fn drive(mut events: EventLoop, pending: Arc<Mutex<Pending>>) {
    let failure = loop {
        match events.poll().await {
            Ok(Happened::Written(id)) => {
                let mut pending = pending.lock().unwrap_or_else(|poison| poison.into_inner());
                if let Some(done) = pending.unsent.pop_front() {
                    pending.unacked.insert(id, done);
                }
            }
            Ok(Happened::Acked(id, result)) => {
                let mut pending = pending.lock().unwrap_or_else(|poison| poison.into_inner());
                if let Some(done) = pending.unacked.remove(&id) {
                    let _ = done.send(result);
                }
            }
            Ok(Happened::Connected | Happened::Other) => {}
            Err(failure) => break failure,
        }
    };
    let mut pending = pending.lock().unwrap_or_else(|poison| poison.into_inner());
    let Pending {
        unsent, unacked, ..
    } = &mut *pending;
    for done in unsent
        .drain(..)
        .chain(unacked.drain().map(|(_, done)| done))
    {
        let _ = done.send(Err(failure.clone()));
    }
    pending.failed = Some(failure);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_the_address_and_the_credentials() {
        let address = Address::parse("mqtts://ops%40acme:p%3Ass@broker.example").unwrap();
        assert_eq!(
            (address.host.as_str(), address.port, address.tls),
            ("broker.example", 8883, true)
        );
        assert_eq!(
            address.credentials,
            Some(("ops@acme".to_owned(), "p:ss".to_owned()))
        );
        let plain = Address::parse("mqtt://127.0.0.1:1884").unwrap();
        assert_eq!(
            (plain.port, plain.tls, plain.credentials),
            (1884, false, None)
        );
        assert!(Address::parse("http://broker").is_err());
    }

    #[test]
    fn topic_levels_made_from_values_stay_one_level() {
        for (c, special) in [
            ('/', true),
            ('+', true),
            ('#', true),
            (' ', true),
            ('.', false),
        ] {
            assert_eq!(is_topic_special(c), special, "{c:?}");
        }
    }
}
