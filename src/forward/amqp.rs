//! The RabbitMQ sink (AMQP 0.9.1): publishes the event's body to an exchange with a routing key
//! made from the event, as a persistent message with `message_id` = eventId, on a channel with
//! publisher confirms, and waits for the broker's ack. An unroutable message (no queue bound)
//! is a failure, so it is retried rather than lost. The trace context goes in the message's
//! `traceparent` and `tracestate` headers. Connects on first use and after failures.

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::tcp::OwnedTLSConfig;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties,
    DefaultConnectionBuilder, ExchangeKind,
};
use tokio::sync::Mutex;

use super::error::AmqpStep;
use super::{ForwardError, Sent, render};
use crate::config::sinks::SinkTls;
use crate::secret::Secret;
use crate::store::Delivery;
use crate::traces::TraceContext;
use crate::traces::context::{TRACEPARENT, TRACESTATE};

/// A RabbitMQ publisher.
pub(crate) struct AmqpSink {
    url: Secret,
    exchange: String,
    routing_key: String,
    declare_exchange: bool,
    /// The sink's CAs and client certificate, for `amqps://`.
    tls: OwnedTLSConfig,
    channel: Mutex<Option<(Connection, Channel)>>,
}

impl std::fmt::Debug for AmqpSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpSink")
            .field("exchange", &self.exchange)
            .finish_non_exhaustive()
    }
}

impl AmqpSink {
    /// A sink publishing to `exchange` on the broker at `url`.
    pub(crate) fn new(
        url: Secret,
        exchange: String,
        routing_key: String,
        declare_exchange: bool,
        tls: &SinkTls,
    ) -> Self {
        AmqpSink {
            url,
            exchange,
            routing_key,
            declare_exchange,
            tls: super::tls::amqp(tls),
            channel: Mutex::new(None),
        }
    }

    /// Connects, opens a channel with publisher confirms, and declares the exchange when the
    /// sink says so.
    pub(crate) async fn probe(&self) -> Result<String, ForwardError> {
        self.channel().await?;
        Ok(if self.declare_exchange {
            format!("connected; exchange {} declared", self.exchange)
        } else {
            "connected".to_owned()
        })
    }

    async fn channel(&self) -> Result<Channel, ForwardError> {
        let mut slot = self.channel.lock().await;
        if let Some((connection, channel)) = slot.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        let connection = DefaultConnectionBuilder::new()
            .map_err(failed(AmqpStep::Connect))?
            .with_uri_str(self.url.expose().to_owned())
            .with_properties(ConnectionProperties::default())
            .with_tls_config(self.tls.clone())
            .connect()
            .await
            .map_err(failed(AmqpStep::Connect))?;
        let channel = connection
            .create_channel()
            .await
            .map_err(failed(AmqpStep::OpenChannel))?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(failed(AmqpStep::ConfirmSelect))?;
        if self.declare_exchange {
            channel
                .exchange_declare(
                    self.exchange.as_str().into(),
                    ExchangeKind::Topic,
                    ExchangeDeclareOptions {
                        durable: true,
                        ..ExchangeDeclareOptions::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(failed(AmqpStep::DeclareExchange(self.exchange.clone())))?;
        }
        *slot = Some((connection, channel.clone()));
        Ok(channel)
    }

    /// Publishes one event and waits for the broker's confirm.
    pub(crate) async fn deliver(
        &self,
        delivery: &Delivery,
        trace: Option<&TraceContext>,
    ) -> Result<Sent, ForwardError> {
        let channel = self.channel().await?;
        let routing_key = render(&self.routing_key, delivery);
        let mut properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(delivery.event_id.as_str().into())
            .with_type(delivery.event_type.as_str().into());
        let mut headers = FieldTable::default();
        headers.insert(
            super::DIALECT_HEADER.into(),
            AMQPValue::LongString(delivery.dialect.as_str().into()),
        );
        headers.insert(
            super::SOURCE_HEADER.into(),
            AMQPValue::LongString(delivery.source.as_str().into()),
        );
        if let Some(trace) = trace {
            headers.insert(
                TRACEPARENT.into(),
                AMQPValue::LongString(trace.traceparent().into()),
            );
            if let Some(state) = trace.tracestate() {
                headers.insert(TRACESTATE.into(), AMQPValue::LongString(state.into()));
            }
        }
        properties = properties.with_headers(headers);
        let outcome = async {
            let confirm = channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    routing_key.as_str().into(),
                    BasicPublishOptions {
                        mandatory: true,
                        ..BasicPublishOptions::default()
                    },
                    &delivery.body,
                    properties,
                )
                .await
                .map_err(failed(AmqpStep::Publish))?
                .await
                .map_err(failed(AmqpStep::Confirm))?;
            match confirm {
                Confirmation::Ack(None) => Ok(()),
                Confirmation::Ack(Some(returned)) => Err(ForwardError::Unroutable {
                    routing_key: routing_key.clone(),
                    exchange: self.exchange.clone(),
                    reply: returned.reply_text.to_string(),
                }),
                Confirmation::Nack(_) => Err(ForwardError::Refused),
                Confirmation::NotRequested => Err(ForwardError::NotConfirmed),
            }
        }
        .await;
        match outcome {
            Ok(()) => Ok(Sent::default()),
            Err(error) => {
                // The channel is fine when only the routing failed; otherwise open another.
                if !matches!(error, ForwardError::Unroutable { .. }) {
                    *self.channel.lock().await = None;
                }
                Err(error)
            }
        }
    }
}

/// Makes a failed `step`'s lapin error a `ForwardError`.
fn failed(step: AmqpStep) -> impl FnOnce(lapin::Error) -> ForwardError {
    move |source| ForwardError::Amqp { step, source }
}
