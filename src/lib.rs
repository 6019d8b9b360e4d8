//! order-listener: the buyer's side of TMF641 service-order notifications.
//!
//! - `domain`: the envelope, TMF641 states, the order projection and its incremental fold;
//!   pure, no IO.
//! - `store`: durable storage behind one [`store::Store`] interface: SQLite embedded, or
//!   PostgreSQL for several replicas; one append pipeline for both.
//! - `http`: the public Listener API, the admin API and web console, TLS, credentials, the
//!   accept loop.
//! - `forward`: handing events on from the outbox to HTTP webhooks, NATS JetStream, RabbitMQ,
//!   Redis Streams, MQTT and Kafka.
//! - `metrics`: the Prometheus registry of one app.
//! - `hub`: the seller's Hub API: types, a client, and ONAP's query rules.
//! - `simulate`: plays the seller: hub server, order model, faults, load generator.
//! - `outbound`: HTTP clients with TLS trust options and credentials.
//! - `output`: the commands' standard output: `outln!`, and a closed pipe as a quiet end (a
//!   leaf).
//! - `standard_webhooks`: `whsec_`/`whpk_` keys parsed once; signing and verifying (a leaf).
//! - `private_file`: owner-only files replaced atomically (a leaf).
//! - `retention`: the pruning task of `serve`.
//! - `reconcile`: checks suspect orders against the sellers' APIs and records synthesized
//!   events where they differ: `order-listener reconcile`, and `serve`'s sweep.
//! - `app`: start-up and shutdown glue that wires the parts together.
//! - `config`: file, environment and flags parsed into a typed [`config::Config`].
//! - `cli`: the command line.
//! - `telemetry`: tracing set-up (`LogFormat`) and error formatting.
//! - `secret`: `Secret`, a value `Debug` never prints.
//! - `traces`: OpenTelemetry spans exported over OTLP, and the W3C trace context passed from
//!   the seller to the sinks.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub(crate) mod forward;
pub(crate) mod http;
pub(crate) mod hub;
pub mod metrics;
pub(crate) mod outbound;
pub(crate) mod output;
pub(crate) mod private_file;
pub(crate) mod reconcile;
pub(crate) mod retention;
pub mod secret;
pub mod simulate;
pub(crate) mod standard_webhooks;
pub mod store;
pub mod telemetry;
pub mod traces;
