//! Pure types and rules: the Listener envelope, TMF641 states, the service-order projection and
//! the rules that make an order suspect.
//!
//! Nothing here does IO or knows of HTTP or SQL; it is tested with plain unit and property tests.

#[cfg(test)]
mod arbitrary;
pub mod envelope;
pub mod fold;
pub mod key;
pub mod name;
pub mod projection;
pub mod reconcile;
pub mod routing;
pub mod snapshot;
pub mod state;
pub mod suspect;
