//! Simulated service orders walking a seller's state machine, and the notifications the seller
//! sends for them in its dialect. Seeded, so that a run can be replayed.
//!
//! - `Onap`: what ONAP NBI does. A creation notification in `acknowledged`; item state changes
//!   (a `modify` item repeats `inProgress`); an order state change only for `completed` and
//!   `failed`. `rejected` and `partial` orders get no order notification.
//! - `Tmf641`: TMF641's full machine, every transition notified, with `pending`, `held` and
//!   the cancellation states. A TMF641 seller also sends jeopardy alerts (held), information
//!   requests (pending), milestones, the cancellation request's own events and, now and then,
//!   the deletion of a finished order.
//! - `Mef`: MEF Legato's states: no cancellation states, items never `partial`. Items move
//!   first and the order follows (the developer guide's sequence); a state is notified only
//!   when it really changes, never at creation.
//!
//! A dialect without an event for a change (ONAP has no milestone) sends nothing for it.

use chrono::{DateTime, Duration, Utc};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::Value;

use super::payload::{
    Change, Notice, SimItem, SimOrder, TaskState, body, carried, event_type, href,
};
use crate::domain::envelope::{Dialect, EventType, Family};
use crate::domain::state::State;

/// Which seller's state machine to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Machine {
    /// ONAP NBI, as it behaves in practice.
    Onap,
    /// TMF641's full state machine, every transition notified.
    Tmf641,
    /// MEF Legato's states (no cancellation, items never partial), every change notified.
    Mef,
}

impl Machine {
    /// The machine a dialect's seller walks unless told otherwise.
    pub fn of(dialect: Dialect) -> Machine {
        match dialect.family() {
            Family::Onap => Machine::Onap,
            Family::Tmf => Machine::Tmf641,
            Family::Mef => Machine::Mef,
        }
    }

    /// Refuses a machine whose states or habits the dialect cannot send.
    pub fn check(self, dialect: Dialect) -> anyhow::Result<()> {
        if dialect.family() == Family::Mef && self != Machine::Mef {
            anyhow::bail!(
                "a {dialect} seller walks MEF's states (no cancellation states, items never \
                 partial, no repeated state): leave --machine out or give --machine mef"
            );
        }
        Ok(())
    }
}

/// One notification, ready to send.
#[derive(Debug, Clone)]
pub struct SimEvent {
    /// Its eventId.
    pub event_id: String,
    /// Its type.
    pub event_type: EventType,
    /// Its eventDate (eventTime).
    pub event_date: DateTime<Utc>,
    /// Which order it is about (index into the orders).
    pub order: usize,
    /// The order's state it tells the listener, when it tells one.
    pub order_state: Option<State>,
    /// The item states it tells the listener.
    pub item_states: Vec<(String, State)>,
    /// The body.
    pub body: Value,
    /// The order as the seller has it just after this change: what its Service Ordering API
    /// serves from the moment this notification is due.
    pub order_after: SimOrder,
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// How many orders.
    pub orders: usize,
    /// The most items an order has (at least 1).
    pub max_items: usize,
    /// The seller's state machine.
    pub machine: Machine,
    /// The seller's dialect.
    pub dialect: Dialect,
    /// Where the seller serves its orders (the `href` of TMF641 and MEF events); a path alone
    /// without it.
    pub seller_url: Option<String>,
    /// The seed of the random choices.
    pub seed: u64,
    /// The date of the first order.
    pub start: DateTime<Utc>,
}

struct Walk<'a> {
    rng: &'a mut StdRng,
    dialect: Dialect,
    seller_url: Option<&'a str>,
    order: SimOrder,
    index: usize,
    now: DateTime<Utc>,
    events: Vec<SimEvent>,
}

impl Walk<'_> {
    fn tick(&mut self) {
        self.now += Duration::milliseconds(self.rng.random_range(1..=40));
    }

    /// Whether the dialect has an event for this change.
    fn speaks(&self, change: Change) -> bool {
        event_type(self.dialect, change).is_some()
    }

    fn emit(&mut self, change: Change) {
        let Some(kind) = event_type(self.dialect, change) else {
            return;
        };
        self.tick();
        let event_id = uuid::Builder::from_random_bytes(self.rng.random())
            .into_uuid()
            .to_string();
        let href = href(self.dialect, self.seller_url, &self.order.id);
        let notice = Notice {
            event_id: &event_id,
            date: self.now,
            change,
            order: &self.order,
            href: &href,
        };
        let body = body(self.dialect, kind, &notice);
        let told = carried(self.dialect, change, &self.order);
        self.events.push(SimEvent {
            event_id,
            event_type: kind,
            event_date: self.now,
            order: self.index,
            order_state: told.order_state,
            item_states: told.item_states,
            body,
            order_after: self.order.clone(),
        });
    }

    fn set_order(&mut self, state: State, notify: bool) {
        self.order.state = state;
        if state == State::InProgress && self.order.started_at.is_none() {
            self.order.started_at = Some(self.now);
        }
        if state.is_final() {
            self.order.completed_at = Some(self.now);
        }
        if notify {
            self.emit(Change::OrderState);
        } else {
            self.tick();
        }
    }

    fn set_item(&mut self, index: usize, state: State) {
        self.order.items[index].state = state;
        self.emit(Change::ItemState(index));
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
            started_at: None,
            completed_at: None,
            items,
        };
        let mut walk = Walk {
            rng: &mut rng,
            dialect: options.dialect,
            seller_url: options.seller_url.as_deref(),
            order,
            index,
            now: start,
            events: Vec::new(),
        };
        walk.emit(Change::Created);
        match options.machine {
            Machine::Onap => walk_onap(&mut walk),
            Machine::Tmf641 => walk_tmf641(&mut walk),
            Machine::Mef => walk_mef(&mut walk),
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

/// Completes or fails every item (85% complete), with a milestone at the first completion
/// where the dialect has one, and returns the order's final state.
fn finish_items(walk: &mut Walk<'_>) -> State {
    let mut completed = 0;
    for index in 0..walk.order.items.len() {
        if walk.rng.random_bool(0.85) {
            walk.set_item(index, State::Completed);
            completed += 1;
            if completed == 1 && walk.speaks(Change::Milestone) && walk.rng.random_bool(0.5) {
                walk.emit(Change::Milestone);
            }
        } else {
            walk.set_item(index, State::Failed);
        }
    }
    match completed {
        n if n == walk.order.items.len() => State::Completed,
        0 => State::Failed,
        _ => State::Partial,
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
        walk.emit(Change::Jeopardy);
        walk.set_order(State::InProgress, true);
    }
    if walk.rng.random_bool(0.15) {
        walk.set_order(State::Pending, true);
        walk.emit(Change::InformationRequired);
        walk.set_order(State::InProgress, true);
    }
    if walk.rng.random_bool(0.1) {
        walk.emit(Change::CancellationRequested);
        walk.set_order(State::AssessingCancellation, true);
        if walk.speaks(Change::CancellationInformationRequired) && walk.rng.random_bool(0.3) {
            walk.emit(Change::CancellationInformationRequired);
        }
        if walk.rng.random_bool(0.5) {
            walk.emit(Change::CancellationState(TaskState::InProgress));
            walk.set_order(State::PendingCancellation, true);
            for index in 0..walk.order.items.len() {
                walk.set_item(index, State::AssessingCancellation);
                walk.set_item(index, State::PendingCancellation);
                walk.set_item(index, State::Cancelled);
            }
            walk.set_order(State::Cancelled, true);
            walk.emit(Change::CancellationState(TaskState::Done));
            return;
        }
        walk.emit(Change::CancellationState(TaskState::TerminatedWithError));
        walk.set_order(State::InProgress, true);
    }
    let state = finish_items(walk);
    walk.set_order(state, true);
    if walk.speaks(Change::Deleted) && walk.rng.random_bool(0.1) {
        walk.emit(Change::Deleted);
    }
}

fn walk_mef(walk: &mut Walk<'_>) {
    if walk.rng.random_bool(0.05) {
        walk.set_order(State::Rejected, true);
        return;
    }
    let count = walk.order.items.len();
    for index in 0..count {
        walk.set_item(index, State::InProgress);
        if index == 0 {
            walk.set_order(State::InProgress, true);
        }
    }
    // An item held or pending holds the order with it, until it moves on.
    for (rate, state) in [(0.2, State::Held), (0.15, State::Pending)] {
        if walk.rng.random_bool(rate) {
            let index = walk.rng.random_range(0..count);
            walk.set_item(index, state);
            walk.set_order(state, true);
            if state == State::Pending {
                walk.emit(Change::InformationRequired);
            }
            walk.set_item(index, State::InProgress);
            walk.set_order(State::InProgress, true);
        }
    }
    let state = finish_items(walk);
    walk.set_order(state, true);
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::domain::envelope::{ParseOptions, parse};
    use crate::domain::projection::{TimelineEntry, project};

    fn options(dialect: Dialect, machine: Machine, seed: u64, orders: usize) -> ModelOptions {
        ModelOptions {
            orders,
            max_items: 4,
            machine,
            dialect,
            seller_url: Some("http://seller.example:8080".into()),
            seed,
            start: Utc::now(),
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_run() {
        let (_, first) = generate(options(Dialect::Onap, Machine::Onap, 7, 60));
        let (_, second) = generate(options(Dialect::Onap, Machine::Onap, 7, 60));
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
        let (orders, events) = generate(options(Dialect::Onap, Machine::Onap, 11, 60));
        for event in events
            .iter()
            .filter(|e| e.event_type == EventType::ServiceOrderStateChange)
        {
            assert!(
                matches!(event.order_state, Some(State::Completed | State::Failed)),
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

    /// Every dialect with every machine it can play.
    const RUNS: [(Dialect, Machine); 9] = [
        (Dialect::Onap, Machine::Onap),
        (Dialect::Onap, Machine::Tmf641),
        (Dialect::Onap, Machine::Mef),
        (Dialect::Tmf641V4, Machine::Tmf641),
        (Dialect::Tmf641V4, Machine::Onap),
        (Dialect::Tmf641V5, Machine::Tmf641),
        (Dialect::Tmf641V5, Machine::Mef),
        (Dialect::MefLegatoV5, Machine::Mef),
        (Dialect::MefLegatoV6, Machine::Mef),
    ];

    /// Each generated body passes the listener's own parser for its dialect and path, says
    /// exactly what the ground truth says it says, and the walks project without anomalies.
    #[test]
    fn every_body_parses_as_its_dialect_and_carries_what_the_ground_truth_counts() {
        for (dialect, machine) in RUNS {
            machine.check(dialect).unwrap();
            let (orders, events) = generate(options(dialect, machine, 3, 60));
            for (index, order) in orders.iter().enumerate() {
                let timeline: Vec<TimelineEntry> = events
                    .iter()
                    .filter(|event| event.order == index)
                    .map(|event| {
                        let path_event = (dialect != Dialect::Onap).then_some(event.event_type);
                        let parsed = parse(
                            dialect,
                            path_event,
                            event.body.to_string().into(),
                            ParseOptions::default(),
                        )
                        .unwrap_or_else(|error| {
                            panic!("{dialect} {}: {error}: {}", event.event_type, event.body)
                        });
                        assert_eq!(parsed.event_type, event.event_type);
                        assert_eq!(parsed.dialect, dialect);
                        let facts = parsed.order.expect("an order event");
                        assert_eq!(facts.order_id.as_str(), order.id);
                        assert_eq!(facts.state, event.order_state, "{dialect} {}", event.body);
                        let items: Vec<(String, State)> = facts
                            .items
                            .iter()
                            .filter_map(|item| item.state.map(|state| (item.id.clone(), state)))
                            .collect();
                        assert_eq!(items, event.item_states, "{dialect} {}", event.body);
                        TimelineEntry {
                            source: crate::domain::envelope::Source::Seller,
                            event_id: parsed.event_id,
                            event_date: parsed.event_date,
                            event_type: parsed.event_type,
                            dialect: parsed.dialect,
                            facts,
                        }
                    })
                    .collect();
                let projection = project(order.id.parse().unwrap(), timeline).unwrap();
                assert_eq!(
                    projection.anomalies,
                    vec![],
                    "{dialect} with {machine:?} walks only allowed transitions"
                );
                assert_eq!(
                    crate::domain::suspect::examine(&projection),
                    vec![],
                    "{dialect} with {machine:?}: nothing lost, nothing suspect"
                );
            }
        }
    }

    #[test]
    fn a_tmf641_seller_uses_all_ten_listener_paths_and_onap_none_of_its_extras() {
        for dialect in [Dialect::Tmf641V4, Dialect::Tmf641V5] {
            let (_, events) = generate(options(dialect, Machine::Tmf641, 20261130, 200));
            let sent: BTreeSet<EventType> = events.iter().map(|e| e.event_type).collect();
            let all: BTreeSet<EventType> = dialect.event_types().iter().copied().collect();
            assert_eq!(sent, all, "{dialect}");
        }
        let (_, events) = generate(options(Dialect::Onap, Machine::Tmf641, 20261130, 200));
        assert!(
            events
                .iter()
                .all(|e| Dialect::Onap.event_types().contains(&e.event_type))
        );
    }

    #[test]
    fn a_mef_seller_walks_mefs_states_and_notifies_only_real_changes() {
        let (orders, events) = generate(options(Dialect::MefLegatoV6, Machine::Mef, 5, 200));
        let sent: BTreeSet<EventType> = events.iter().map(|e| e.event_type).collect();
        assert_eq!(sent.len(), 4, "all four MEF events: {sent:?}");
        let cancellation = [
            State::Cancelled,
            State::AssessingCancellation,
            State::PendingCancellation,
        ];
        for (index, order) in orders.iter().enumerate() {
            assert!(!cancellation.contains(&order.state));
            let mut last_order: Option<State> = None;
            let mut last_items: BTreeMap<String, State> = BTreeMap::new();
            for event in events.iter().filter(|event| event.order == index) {
                if event.event_type == EventType::ServiceOrderCreateEvent {
                    assert_eq!(event.order_state, None, "no state at creation");
                }
                if let Some(state) = event.order_state {
                    assert!(!cancellation.contains(&state));
                    assert_ne!(last_order, Some(state), "a notified state is a change");
                    last_order = Some(state);
                }
                for (item, state) in &event.item_states {
                    assert!(!cancellation.contains(state) && *state != State::Partial);
                    assert_ne!(last_items.insert(item.clone(), *state), Some(*state));
                }
            }
        }
        assert!(Machine::Tmf641.check(Dialect::MefLegatoV5).is_err());
        assert!(Machine::Onap.check(Dialect::MefLegatoV6).is_err());
    }
}
