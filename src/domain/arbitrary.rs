//! Test support for the projection and the fold: proptest strategies for the events of one
//! order, and a seeded shuffle for arrival orders. Compiled for tests only.

use proptest::prelude::*;

use super::envelope::{Dialect, EventDate, EventType, ItemFact, OrderFacts, OrderId};
use super::projection::TimelineEntry;
use super::state::State;

/// The order every generated event is about.
pub(super) fn order_id() -> OrderId {
    "order-1".parse().expect("a valid order id")
}

/// One service-order event of any type, in any dialect (mostly ONAP, so that an order's
/// events often share one), with or without an order state, with up to three items among
/// three ids (states and actions optional) and a buyer's reference and completion date
/// sometimes. Its eventId is a placeholder: [`timeline`] numbers them.
pub(super) fn entry() -> impl Strategy<Value = TimelineEntry> {
    let kinds = prop_oneof![
        Just(EventType::ServiceOrderCreation),
        Just(EventType::ServiceOrderStateChange),
        Just(EventType::ServiceOrderItemStateChange),
        Just(EventType::ServiceOrderCreateEvent),
        Just(EventType::ServiceOrderStateChangeEvent),
    ];
    let dialects = prop_oneof![
        3 => Just(Dialect::Onap),
        1 => proptest::sample::select(Dialect::ALL.to_vec()),
    ];
    let state = proptest::option::of(proptest::sample::select(State::ALL.to_vec()));
    let items = proptest::collection::vec(
        (
            proptest::sample::select(vec!["1", "2", "3"]),
            proptest::option::of(proptest::sample::select(State::ALL.to_vec())),
            proptest::option::of(proptest::sample::select(vec!["add", "modify"])),
        ),
        0..4,
    );
    // Few distinct dates, so that ties are common and the tie-breaks are exercised.
    (
        0..6i64,
        kinds,
        state,
        items,
        proptest::option::of("[a-c]{1,2}"),
        proptest::option::of("[a-c]{1,2}"),
        dialects,
    )
        .prop_map(
            |(millis, kind, state, items, external, completion, dialect)| TimelineEntry {
                source: crate::domain::envelope::Source::Seller,
                event_id: "placeholder".parse().expect("a valid event id"),
                event_date: EventDate::from_timestamp_micros(1_553_501_336_000_000 + millis * 1000)
                    .expect("a date in range"),
                event_type: kind,
                dialect,
                facts: OrderFacts {
                    order_id: order_id(),
                    state,
                    external_id: external,
                    order_date: None,
                    completion_date_time: completion,
                    items: items
                        .into_iter()
                        .map(|(id, state, action)| ItemFact {
                            id: id.into(),
                            state,
                            action: action.map(str::to_owned),
                        })
                        .collect(),
                },
            },
        )
}

/// Between one and `most - 1` events with unique eventIds (`e00`, `e01`, …), as the store
/// guarantees.
pub(super) fn timeline(most: usize) -> impl Strategy<Value = Vec<TimelineEntry>> {
    proptest::collection::vec(entry(), 1..most).prop_map(|entries| {
        entries
            .into_iter()
            .enumerate()
            .map(|(index, mut entry)| {
                entry.event_id = format!("e{index:02}").parse().expect("a valid event id");
                entry
            })
            .collect()
    })
}

/// Shuffles `items` deterministically from `seed` (xorshift).
pub(super) fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    for index in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(index, (state % (index as u64 + 1)) as usize);
    }
}
