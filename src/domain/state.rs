//! The TMF641 `StateType` of service orders and their items, and the state machine that says
//! which transitions are expected.
//!
//! The machine is the union of TMF641 v4's and of what ONAP NBI does in practice: ONAP lets an
//! order or item go from `acknowledged` straight to `completed`, which TMF641 does not draw.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The state of a service order or of one of its items (TMF641 `ServiceOrderStateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum State {
    /// The seller has received the order.
    Acknowledged,
    /// The seller refused the order.
    Rejected,
    /// The order waits for something from the buyer.
    Pending,
    /// The seller has put the order on hold.
    Held,
    /// The seller is working on the order.
    InProgress,
    /// The order was cancelled.
    Cancelled,
    /// The order was fulfilled.
    Completed,
    /// The order could not be fulfilled.
    Failed,
    /// Part of the order was fulfilled.
    Partial,
    /// The seller is deciding whether the order can still be cancelled.
    AssessingCancellation,
    /// The seller is cancelling the order.
    PendingCancellation,
}

impl State {
    /// Every state, in the order TMF641 lists them.
    pub const ALL: [State; 11] = [
        State::Acknowledged,
        State::Rejected,
        State::Pending,
        State::Held,
        State::InProgress,
        State::Cancelled,
        State::Completed,
        State::Failed,
        State::Partial,
        State::AssessingCancellation,
        State::PendingCancellation,
    ];

    /// An order's states in MEF LSO Legato's `ServiceOrderStateType` (v5 and v6): TMF641's
    /// without the cancellation states.
    pub const MEF_ORDER: [State; 8] = [
        State::Acknowledged,
        State::Rejected,
        State::Pending,
        State::Held,
        State::InProgress,
        State::Completed,
        State::Failed,
        State::Partial,
    ];

    /// An item's states in MEF LSO Legato's `ServiceOrderItemStateType` (v6): an order's,
    /// without `partial` (the last).
    pub const MEF_ITEM: &'static [State] = State::MEF_ORDER.split_at(7).0;

    /// The final states, which have no way out.
    pub const FINAL: [State; 5] = [
        State::Rejected,
        State::Completed,
        State::Failed,
        State::Partial,
        State::Cancelled,
    ];

    /// The wire name, in lower camel case as TMF641 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Acknowledged => "acknowledged",
            State::Rejected => "rejected",
            State::Pending => "pending",
            State::Held => "held",
            State::InProgress => "inProgress",
            State::Cancelled => "cancelled",
            State::Completed => "completed",
            State::Failed => "failed",
            State::Partial => "partial",
            State::AssessingCancellation => "assessingCancellation",
            State::PendingCancellation => "pendingCancellation",
        }
    }

    /// A final state has no way out.
    pub fn is_final(self) -> bool {
        State::FINAL.contains(&self)
    }

    /// Whether the state machine allows going from `self` to `next`. Staying in the same state
    /// (ONAP repeats `inProgress` for `modify` items) is always allowed.
    pub fn can_go_to(self, next: State) -> bool {
        use State::*;
        if self == next {
            return true;
        }
        match self {
            Acknowledged => matches!(next, InProgress | Rejected | Completed),
            InProgress => matches!(
                next,
                Pending | Held | AssessingCancellation | Completed | Failed | Partial
            ),
            Pending => matches!(next, InProgress | AssessingCancellation | Cancelled),
            Held => matches!(next, InProgress | AssessingCancellation),
            AssessingCancellation => {
                matches!(next, PendingCancellation | InProgress | Held | Pending)
            }
            PendingCancellation => matches!(next, Cancelled),
            Rejected | Cancelled | Completed | Failed | Partial => false,
        }
    }

    /// How far along the lifecycle a state is. It breaks ties between events that carry the
    /// same date, so that the later stage wins whatever the arrival order.
    pub fn lifecycle_rank(self) -> u8 {
        match self {
            State::Acknowledged => 0,
            State::Pending | State::Held => 1,
            State::InProgress => 2,
            State::AssessingCancellation => 3,
            State::PendingCancellation => 4,
            _ => 5,
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of TMF641's state names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a TMF641 state; expected one of {list}", list = State::ALL.map(State::as_str).join(", "))]
pub struct UnknownState(pub String);

impl FromStr for State {
    type Err = UnknownState;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|state| state.as_str() == text)
            .ok_or_else(|| UnknownState(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::State::{self, *};

    #[test]
    fn every_state_round_trips_through_its_wire_name() {
        for state in State::ALL {
            assert_eq!(state.as_str().parse::<State>(), Ok(state));
        }
        assert!("COMPLETED".parse::<State>().is_err());
        assert!("in progress".parse::<State>().is_err());
    }

    #[test]
    fn transitions_follow_the_table() {
        // (from, to, allowed)
        let table = [
            (Acknowledged, InProgress, true),
            (Acknowledged, Rejected, true),
            (Acknowledged, Completed, true),
            (Acknowledged, Failed, false),
            (Acknowledged, Pending, false),
            (InProgress, InProgress, true),
            (InProgress, Completed, true),
            (InProgress, Failed, true),
            (InProgress, Partial, true),
            (InProgress, Pending, true),
            (InProgress, Held, true),
            (InProgress, AssessingCancellation, true),
            (InProgress, Acknowledged, false),
            (InProgress, Cancelled, false),
            (Pending, Cancelled, true),
            (Pending, InProgress, true),
            (Held, InProgress, true),
            (Held, Cancelled, false),
            (AssessingCancellation, PendingCancellation, true),
            (AssessingCancellation, Cancelled, false),
            (PendingCancellation, Cancelled, true),
            (PendingCancellation, InProgress, false),
            (Completed, InProgress, false),
            (Failed, Completed, false),
            (Rejected, Acknowledged, false),
            (Cancelled, Pending, false),
            (Partial, Completed, false),
        ];
        for (from, to, allowed) in table {
            assert_eq!(from.can_go_to(to), allowed, "{from} -> {to}");
        }
    }

    #[test]
    fn final_states_have_no_way_out() {
        for from in State::ALL.into_iter().filter(|s| s.is_final()) {
            for to in State::ALL.into_iter().filter(|to| *to != from) {
                assert!(!from.can_go_to(to), "{from} -> {to}");
            }
        }
    }
}
