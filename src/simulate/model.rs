//! Simulated service orders walking a seller's state machine, and the notifications the seller
//! sends for them. Seeded, so that a run can be replayed.
//!
//! - `Onap`: what ONAP NBI does. A creation notification in `acknowledged`; item state changes
//!   (a `modify` item repeats `inProgress`); an order state change only for `completed` and
//!   `failed`. `rejected` and `partial` orders get no order notification.
//! - `Tmf641`: TMF641's full machine, every transition notified, with `pending`, `held` and
//!   the cancellation states.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use super::payload::{SimItem, SimOrder, notification, order_summary};
use crate::domain::envelope::EventType;
use crate::domain::state::State;

/// Which seller to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// ONAP NBI, as it behaves in practice.
    Onap,
    /// TMF641's full state machine, every transition notified.
    Tmf641,
}

/// One notification, ready to send.
#[derive(Debug, Clone)]
pub struct SimEvent {
    /// Its eventId.
    pub event_id: String,
    /// Its type.
    pub event_type: EventType,
    /// Its eventDate.
    pub event_date: DateTime<Utc>,
    /// Which order it is about (index into the orders).
    pub order: usize,
    /// The order's state it carries.
    pub order_state: State,
    /// The item states it carries.
    pub item_states: Vec<(String, State)>,
    /// The body.
    pub body: Value,
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct ModelOptions {
    /// How many orders.
    pub orders: usize,
    /// The most items an order has (at least 1).
    pub max_items: usize,
    /// The seller.
    pub machine: Machine,
    /// The seed of the random choices.
    pub seed: u64,
    /// The date of the first order.
    pub start: DateTime<Utc>,
}

struct Walk<'a> {
    rng: &'a mut StdRng,
    order: SimOrder,
    index: usize,
    now: DateTime<Utc>,
    events: Vec<SimEvent>,
}

impl Walk<'_> {
    fn tick(&mut self) {
        self.now += Duration::milliseconds(self.rng.random_range(1..=40));
    }

    fn emit(&mut self, event_type: EventType, changed_item: Option<usize>) {
        self.tick();
        let event_id = uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string();
        let body = notification(
            &event_id,
            event_type,
            self.now,
            order_summary(&self.order, changed_item),
        );
        let item_states = match changed_item {
            Some(index) => vec![(
                self.order.items[index].id.clone(),
                self.order.items[index].state,
            )],
            None => self
                .order
                .items
                .iter()
                .map(|item| (item.id.clone(), item.state))
                .collect(),
        };
        self.events.push(SimEvent {
            event_id,
            event_type,
            event_date: self.now,
            order: self.index,
            order_state: self.order.state,
            item_states,
            body,
        });
    }

    fn set_order(&mut self, state: State, notify: bool) {
        self.order.state = state;
        if state.is_final() {
            self.order.completed_at = Some(self.now);
        }
        if notify {
            self.emit(EventType::ServiceOrderStateChange, None);
        } else {
            self.tick();
        }
    }

    fn set_item(&mut self, index: usize, state: State) {
        self.order.items[index].state = state;
        self.emit(EventType::ServiceOrderItemStateChange, Some(index));
    }
}

/// Generates the orders and every notification the seller sends, sorted by eventDate.
pub fn generate(options: ModelOptions) -> (Vec<SimOrder>, Vec<SimEvent>) {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let mut orders = Vec::with_capacity(options.orders);
    let mut events = Vec::new();
    for index in 0..options.orders {
        let start = options.start + Duration::milliseconds(index as i64 * 25);
        let item_count = rng.random_range(1..=options.max_items.max(1));
        let items = (1..=item_count)
            .map(|n| SimItem {
                id: format!("{n:02}"),
                action: ["add", "add", "modify", "delete"]
                    .choose(&mut rng)
                    .copied()
                    .unwrap_or("add"),
                state: State::Acknowledged,
                service_id: uuid::Builder::from_random_bytes(rng.random())
                    .into_uuid()
                    .to_string(),
            })
            .collect();
        let order = SimOrder {
            id: format!("{:024x}", rng.random::<u128>() >> 32),
            external_id: format!("BSS-{:06}", rng.random_range(0..1_000_000)),
            order_date: start,
            state: State::Acknowledged,
            completed_at: None,
            items,
        };
        let mut walk = Walk {
            rng: &mut rng,
            order,
            index,
            now: start,
            events: Vec::new(),
        };
        walk.emit(EventType::ServiceOrderCreation, None);
        match options.machine {
            Machine::Onap => walk_onap(&mut walk),
            Machine::Tmf641 => walk_tmf641(&mut walk),
        }
        events.append(&mut walk.events);
        orders.push(walk.order);
    }
    events.sort_by(|a, b| {
        a.event_date
            .cmp(&b.event_date)
            .then_with(|| a.event_id.cmp(&b.event_id))
    });
    (orders, events)
}

fn walk_onap(walk: &mut Walk<'_>) {
    if walk.rng.random_bool(0.05) {
        walk.set_order(State::Rejected, false);
        return;
    }
    walk.set_order(State::InProgress, false);
    let mut completed = 0;
    for index in 0..walk.order.items.len() {
        walk.set_item(index, State::InProgress);
        if walk.order.items[index].action == "modify" {
            for _ in 0..walk.rng.random_range(1..=2) {
                walk.set_item(index, State::InProgress);
            }
        }
        if walk.rng.random_bool(0.85) {
            walk.set_item(index, State::Completed);
            completed += 1;
        } else {
            walk.set_item(index, State::Failed);
        }
    }
    match completed {
        n if n == walk.order.items.len() => walk.set_order(State::Completed, true),
        0 => walk.set_order(State::Failed, true),
        _ => walk.set_order(State::Partial, false),
    }
}

fn walk_tmf641(walk: &mut Walk<'_>) {
    if walk.rng.random_bool(0.05) {
        walk.set_order(State::Rejected, true);
        return;
    }
    walk.set_order(State::InProgress, true);
    for index in 0..walk.order.items.len() {
        walk.set_item(index, State::InProgress);
    }
    // Detours that come back to inProgress.
    if walk.rng.random_bool(0.2) {
        walk.set_order(State::Held, true);
        walk.set_order(State::InProgress, true);
    }
    if walk.rng.random_bool(0.15) {
        walk.set_order(State::Pending, true);
        walk.set_order(State::InProgress, true);
    }
    if walk.rng.random_bool(0.1) {
        walk.set_order(State::AssessingCancellation, true);
        if walk.rng.random_bool(0.5) {
            walk.set_order(State::PendingCancellation, true);
            for index in 0..walk.order.items.len() {
                walk.set_item(index, State::AssessingCancellation);
                walk.set_item(index, State::PendingCancellation);
                walk.set_item(index, State::Cancelled);
            }
            walk.set_order(State::Cancelled, true);
            return;
        }
        walk.set_order(State::InProgress, true);
    }
    let mut completed = 0;
    for index in 0..walk.order.items.len() {
        if walk.rng.random_bool(0.85) {
            walk.set_item(index, State::Completed);
            completed += 1;
        } else {
            walk.set_item(index, State::Failed);
        }
    }
    let state = match completed {
        n if n == walk.order.items.len() => State::Completed,
        0 => State::Failed,
        _ => State::Partial,
    };
    walk.set_order(state, true);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::{ParseOptions, parse_notification};
    use crate::domain::projection::{TimelineEntry, project};

    fn options(machine: Machine, seed: u64) -> ModelOptions {
        ModelOptions {
            orders: 60,
            max_items: 4,
            machine,
            seed,
            start: Utc::now(),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let (_, first) = generate(options(Machine::Onap, 7));
        let (_, second) = generate(options(Machine::Onap, 7));
        assert_eq!(
            first.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>(),
            second
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn onap_sends_no_notification_for_rejected_partial_or_in_progress_orders() {
        let (orders, events) = generate(options(Machine::Onap, 11));
        for event in events
            .iter()
            .filter(|e| e.event_type == EventType::ServiceOrderStateChange)
        {
            assert!(
                matches!(event.order_state, State::Completed | State::Failed),
                "{:?}",
                event.order_state
            );
        }
        for (index, order) in orders.iter().enumerate() {
            let creations = events
                .iter()
                .filter(|e| e.order == index && e.event_type == EventType::ServiceOrderCreation)
                .count();
            assert_eq!(creations, 1, "one creation for {}", order.id);
        }
        for event in events
            .iter()
            .filter(|e| e.event_type == EventType::ServiceOrderItemStateChange)
        {
            assert_eq!(
                event.body["event"]["orderItem"].as_array().map(Vec::len),
                Some(1)
            );
        }
    }

    #[test]
    fn every_generated_walk_is_valid_and_parses() {
        for machine in [Machine::Onap, Machine::Tmf641] {
            let (orders, events) = generate(options(machine, 3));
            for (index, order) in orders.iter().enumerate() {
                let timeline: Vec<TimelineEntry> = events
                    .iter()
                    .filter(|event| event.order == index)
                    .map(|event| {
                        let parsed = parse_notification(
                            event.body.to_string().into(),
                            ParseOptions::default(),
                        )
                        .expect("a generated notification satisfies the contract");
                        TimelineEntry {
                            event_id: parsed.event_id,
                            event_date: parsed.event_date,
                            event_type: parsed.event_type,
                            facts: parsed.order.expect("an order event"),
                        }
                    })
                    .collect();
                let projection = project(order.id.parse().unwrap(), timeline).unwrap();
                assert_eq!(
                    projection.anomalies,
                    vec![],
                    "{machine:?} walks only allowed transitions"
                );
            }
        }
    }
}
