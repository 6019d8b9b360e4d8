//! order-listener: the buyer's side of TMF641 service-order notifications.
//!
//! - `domain`: the envelope, TMF641 states and the order projection; pure, no IO.
//! - `store`: durable storage behind one [`store::Store`] interface (SQLite now).
//! - `http`: the public Listener API, the admin API, TLS, credentials, the accept loop.
//! - `hub`: the seller's Hub API: types, a client, and ONAP's query rules.
//! - `simulate`: plays the seller: hub server, order model, faults, load generator.
//! - `outbound`: HTTP clients with TLS trust options and credentials.
//! - `retention`: the pruning task of `serve`.
//! - `app`: start-up and shutdown glue that wires the parts together.
//! - `config`: file, environment and flags parsed into a typed [`config::Config`].
//! - `cli`: the command line.
//! - `telemetry`: tracing set-up and error formatting.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod forward;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod outbound;
pub mod retention;
pub mod simulate;
pub mod store;
pub mod telemetry;
