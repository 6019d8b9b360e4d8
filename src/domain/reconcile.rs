//! Reconciliation's comparison (issue 14), pure: what differs between an order as the
//! listener projected it and as the seller's Service Ordering API answers it ([`compare`]).
//! Only states count: they are what the buyer acts on, and what a lost notification leaves
//! wrong. A state the seller's order does not give (an item it leaves out, MEF v5's stateless
//! references) is never a difference.

use serde::Serialize;

use super::envelope::OrderFacts;
use super::projection::ServiceOrder;
use super::state::State;

/// A state that differs: the projection's (`None`: it has none) and the seller's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The projection's state.
    pub from: Option<State>,
    /// The seller's.
    pub to: State,
}

/// An item whose state differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemChange {
    /// The item's id.
    pub id: String,
    /// Its states.
    #[serde(flatten)]
    pub change: Change,
}

/// What differs between the projection and the seller's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    /// The order's state, when it differs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub order_state: Option<Change>,
    /// The items whose states differ, by id.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemChange>,
}

impl Difference {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.order_state.is_none() && self.items.is_empty()
    }

    /// One line: `order inProgress → completed, item 01 inProgress → completed`.
    pub fn summary(&self) -> String {
        let state = |state: Option<State>| state.map_or("none", State::as_str);
        let order = self
            .order_state
            .iter()
            .map(|change| format!("order {} → {}", state(change.from), change.to));
        let items = self.items.iter().map(|item| {
            format!(
                "item {} {} → {}",
                item.id,
                state(item.change.from),
                item.change.to
            )
        });
        order.chain(items).collect::<Vec<_>>().join(", ")
    }
}

/// What differs between the `projected` order (`None`: the listener never heard of it) and the
/// `seller`'s.
pub fn compare(projected: Option<&ServiceOrder>, seller: &OrderFacts) -> Difference {
    let order_state = seller
        .state
        .map(|to| Change {
            from: projected.and_then(|order| order.state),
            to,
        })
        .filter(|change| change.from != Some(change.to));
    let mut items: Vec<ItemChange> = seller
        .items
        .iter()
        .filter_map(|item| {
            let to = item.state?;
            let from = projected.and_then(|order| {
                order
                    .items
                    .iter()
                    .find(|projected| projected.id == item.id)
                    .and_then(|projected| projected.state)
            });
            (from != Some(to)).then(|| ItemChange {
                id: item.id.clone(),
                change: Change { from, to },
            })
        })
        .collect();
    items.sort_by(|a, b| a.id.cmp(&b.id));
    items.dedup_by(|a, b| a.id == b.id);
    Difference { order_state, items }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::{EventDate, OrderId};
    use crate::domain::projection::ItemProjection;
    use crate::domain::snapshot::read_order;

    fn projected(state: State, items: &[(&str, State)]) -> ServiceOrder {
        ServiceOrder {
            id: "SO-1".parse::<OrderId>().unwrap(),
            state: Some(state),
            external_id: None,
            order_date: None,
            completion_date_time: None,
            items: items
                .iter()
                .map(|(id, state)| ItemProjection {
                    id: (*id).to_owned(),
                    state: Some(*state),
                    action: None,
                    updated_at: None,
                })
                .collect(),
            timeline: Vec::new(),
            anomalies: Vec::new(),
            last_event_date: "2026-11-30T10:00:00Z".parse::<EventDate>().unwrap(),
        }
    }

    #[test]
    fn only_the_states_the_seller_gives_can_differ() {
        let seller = read_order(
            br#"{"id":"SO-1","state":"completed","orderItem":[
                {"id":"01","state":"completed"},{"id":"02","state":null},{"id":"03","state":"failed"}]}"#,
        )
        .unwrap();
        let order = projected(
            State::InProgress,
            &[
                ("01", State::InProgress),
                ("02", State::Acknowledged),
                ("03", State::Failed),
            ],
        );
        let difference = compare(Some(&order), &seller);
        assert_eq!(
            difference.summary(),
            "order inProgress → completed, item 01 inProgress → completed"
        );
        let same = projected(
            State::Completed,
            &[("01", State::Completed), ("03", State::Failed)],
        );
        assert!(compare(Some(&same), &seller).is_empty());

        let unknown = compare(None, &seller);
        assert_eq!(
            unknown.summary(),
            "order none → completed, item 01 none → completed, item 03 none → failed"
        );
        let stateless = read_order(br#"{"id":"SO-1"}"#).unwrap();
        assert!(compare(Some(&order), &stateless).is_empty());
    }
}
