//! The NATS JetStream sink: publishes the event's body to a subject made from the event, with
//! `Nats-Msg-Id` set to the eventId so that the stream deduplicates a redelivery, and waits for
//! the stream's ack. The trace context goes in the `traceparent` and `tracestate` headers.
//! Connects on first use, and again after a failure.

use async_nats::jetstream;
use tokio::sync::Mutex;

use super::{ForwardError, Sent, render};
use crate::config::sinks::SinkTls;
use crate::secret::Secret;
use crate::store::Delivery;
use crate::traces::TraceContext;
use crate::traces::context::{TRACEPARENT, TRACESTATE};

/// A NATS JetStream publisher.
pub(crate) struct NatsSink {
    url: Secret,
    subject: String,
    stream: Option<String>,
    /// The TLS the sink's settings ask for, required of the server; `None`: as the server says.
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
    context: Mutex<Option<jetstream::Context>>,
}

impl std::fmt::Debug for NatsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSink")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl NatsSink {
    /// A sink publishing to `subject` (a template) on the server at `url`, over TLS with the
    /// sink's CAs and client certificate when it has them.
    pub(crate) fn new(
        url: Secret,
        subject: String,
        stream: Option<String>,
        tls: &SinkTls,
    ) -> anyhow::Result<Self> {
        let tls = super::tls::client_config_if(tls.is_set(), tls)?;
        Ok(NatsSink {
            url,
            subject,
            stream,
            tls,
            context: Mutex::new(None),
        })
    }

    async fn context(&self) -> Result<jetstream::Context, ForwardError> {
        let mut slot = self.context.lock().await;
        if let Some(context) = slot.as_ref() {
            return Ok(context.clone());
        }
        // No retry of the first connection inside the client: its error (refused, a
        // certificate not trusted) is this attempt's, and the worker tries again on schedule.
        let mut options = async_nats::ConnectOptions::new().max_reconnects(Some(3));
        if let Some(tls) = &self.tls {
            options = options.require_tls(true).tls_client_config((**tls).clone());
        }
        let client = options
            .connect(self.url.expose())
            .await
            .map_err(|source| ForwardError::NatsConnect { source })?;
        let context = jetstream::new(client);
        if let Some(stream) = &self.stream {
            let subjects = vec![stream_subjects(&self.subject)];
            context
                .get_or_create_stream(jetstream::stream::Config {
                    name: stream.clone(),
                    subjects,
                    ..Default::default()
                })
                .await
                .map_err(|source| ForwardError::NatsStream {
                    stream: stream.clone(),
                    source,
                })?;
        }
        *slot = Some(context.clone());
        Ok(context)
    }

    /// Connects, and creates the stream when the sink names one and it is missing.
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        self.context().await?;
        Ok(match &self.stream {
            Some(stream) => format!("connected; stream {stream} is there"),
            None => "connected".to_owned(),
        })
    }

    /// Publishes one event and waits for the stream's ack.
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        let context = self.context().await?;
        let subject = render(&self.subject, delivery);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            delivery.event_id.as_str(),
        );
        headers.insert("Content-Type", "application/json");
        headers.insert(super::DIALECT_HEADER, delivery.dialect.as_str());
        headers.insert(super::SOURCE_HEADER, delivery.source.as_str());
        if let Some(trace) = trace {
            headers.insert(TRACEPARENT, trace.traceparent().as_str());
            if let Some(state) = trace.tracestate() {
                headers.insert(TRACESTATE, state);
            }
        }
        let outcome = async {
            context
                .publish_with_headers(subject.clone(), headers, delivery.body.clone())
                .await
                .map_err(|source| ForwardError::NatsPublish {
                    subject: subject.clone(),
                    source,
                })?
                .await
                .map_err(|source| ForwardError::NatsNoAck {
                    subject: subject.clone(),
                    source,
                })
        }
        .await;
        match outcome {
            Ok(ack) => Ok(Sent {
                duplicate: ack.duplicate,
            }),
            Err(error) => {
                // Connect again next time.
                *self.context.lock().await = None;
                Err(error)
            }
        }
    }
}

/// The stream subjects that a subject template covers: each placeholder token becomes `*`.
fn stream_subjects(template: &str) -> String {
    template
        .split('.')
        .map(|token| if token.contains('{') { "*" } else { token })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_covers_its_subjects() {
        assert_eq!(
            stream_subjects("orders.{eventType}.{orderId}"),
            "orders.*.*"
        );
        assert_eq!(stream_subjects("buyer.orders"), "buyer.orders");
    }
}
