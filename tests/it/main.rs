//! Integration tests: one binary. Each test starts the real app (in process on port 0, or the
//! real binary where a process must die) against a fresh temporary data directory.

#![allow(clippy::unwrap_used)]

mod admin_api;
mod backup;
mod broker_sinks;
mod cli;
mod client_cli;
mod console;
mod dialects;
mod durability;
mod forwarding;
mod full_disk;
mod helpers;
mod house;
mod lingering;
mod listener_api;
mod metrics;
mod misconfiguration;
mod openapi;
mod operations;
mod order_pages;
mod outbox_cli;
mod projection;
mod reconcile;
mod reload;
mod replicas;
mod resolve;
mod retention;
mod security;
mod seller;
mod seller_dialects;
mod sink_tls;
mod store_contract;
mod stored_rules;
mod stream;
mod suspects;
mod traces;
mod transport;
mod upgrade;
mod wal;
mod webhook_auth;
