//! [`FoldKey`]: the one total order of an order's events, which both
//! [`project`](super::projection::project) and [`Fold`](super::fold::Fold) fold in. A leaf:
//! it knows the envelope's types and the state machine, and nothing that folds. No IO.

use serde::{Deserialize, Serialize};

use super::envelope::{EventDate, EventId, EventType, Role};
use super::state::State;

/// Where an event sits among its order's events: eventDate, then a creation before item
/// changes before order changes, then the later lifecycle stage, then the eventId. This is
/// the one total order both [`project`](super::projection::project) and
/// [`Fold`](super::fold::Fold) use.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FoldKey {
    /// The eventDate in microseconds since the epoch.
    pub date_us: i64,
    /// [`rank`] of the event's type and order state.
    pub rank: u8,
    /// The eventId, the last tie-break.
    pub event_id: String,
}

impl FoldKey {
    /// The key of an event.
    pub fn new(
        event_date: EventDate,
        event_type: EventType,
        state: Option<State>,
        event_id: &EventId,
    ) -> FoldKey {
        FoldKey {
            date_us: event_date.timestamp_micros(),
            rank: rank(event_type, state),
            event_id: event_id.as_str().to_owned(),
        }
    }
}

/// The tie-break between events of one date: creation (0) before item changes (1) before
/// order changes (2), then the order state's [`State::lifecycle_rank`].
pub fn rank(event_type: EventType, state: Option<State>) -> u8 {
    let type_rank = match event_type.role() {
        Role::Creation => 0,
        Role::ItemStateChange => 1,
        Role::StateChange | Role::Other | Role::NotAnOrder => 2,
    };
    type_rank * 8 + state.map_or(0, State::lifecycle_rank)
}
