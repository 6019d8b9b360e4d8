//! The simulator's ground truth, kept from its own bookkeeping of what it sent and what was
//! acknowledged (never from `domain::projection`, so that it checks the listener
//! independently), and the check of the listener's admin API against it.
//!
//! What the listener must show depends on what the dialect's events carry. ONAP's and TMF641's
//! carry the order's and the items' states, so the projection must equal them
//! (`compare_projection`). MEF's carry only a reference; until the listener resolves references
//! from the seller's Service Ordering API, `compare_reference_payloads` checks what the payloads
//! carry. That is the function to widen once resolution lands.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};

use super::model::SimEvent;
use super::payload::SimOrder;
use crate::domain::envelope::Dialect;
use crate::domain::state::State;
use crate::outbound::TlsOptions;
use crate::output::outln;

/// The listener's view of one order compared with the simulator's.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderTruth {
    /// The order id.
    pub id: String,
    /// The state the newest acknowledged notification that carries one carries.
    pub state: Option<State>,
    /// Each item's state from the newest acknowledged notification that gives it.
    pub items: BTreeMap<String, State>,
    /// How many distinct notifications about the order the listener acknowledged.
    pub acknowledged_events: usize,
    /// The seller's own final state (which ONAP may never have notified, and MEF v5 never
    /// tells in its events).
    pub seller_state: State,
}

/// The result of checking the listener.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    checked: usize,
    matching: usize,
    mismatches: Vec<Mismatch>,
}

impl Verification {
    /// Whether every order matched.
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// One line, and the first mismatches.
    pub fn print(&self) -> anyhow::Result<()> {
        outln!(
            "  verified {} orders: {} match the ground truth, {} do not",
            self.checked,
            self.matching,
            self.mismatches.len()
        )?;
        for mismatch in self.mismatches.iter().take(10) {
            outln!(
                "    {}: expected {} got {}",
                mismatch.order,
                mismatch.expected,
                mismatch.actual
            )?;
        }
        Ok(())
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Mismatch {
    order: String,
    expected: Value,
    actual: Value,
}

/// How many orders' newest notification the listener did not acknowledge, in one pass over
/// the events (they are sorted by eventDate, so the last one seen per order is the newest).
pub(super) fn orders_missing_their_newest(
    order_count: usize,
    events: &[SimEvent],
    accepted: &[bool],
) -> usize {
    let mut newest_accepted = vec![None; order_count];
    for (event, accepted) in events.iter().zip(accepted) {
        newest_accepted[event.order] = Some(*accepted);
    }
    newest_accepted
        .into_iter()
        .filter(|newest| *newest == Some(false))
        .count()
}

/// What the listener must show for each order, given what it acknowledged. An event counts
/// for the order's state only if it carries one, and for an item only if it gives its state.
pub(super) fn ground_truth(
    orders: &[SimOrder],
    events: &[SimEvent],
    accepted: &[bool],
) -> Vec<OrderTruth> {
    let mut truths: Vec<OrderTruth> = orders
        .iter()
        .map(|order| OrderTruth {
            id: order.id.clone(),
            state: None,
            items: BTreeMap::new(),
            acknowledged_events: 0,
            seller_state: order.state,
        })
        .collect();
    let mut newest: HashMap<(usize, Option<String>), chrono::DateTime<chrono::Utc>> =
        HashMap::new();
    for (index, event) in events.iter().enumerate() {
        if !accepted[index] {
            continue;
        }
        let truth = &mut truths[event.order];
        truth.acknowledged_events += 1;
        if let Some(state) = event.order_state
            && newest
                .get(&(event.order, None))
                .is_none_or(|date| *date < event.event_date)
        {
            newest.insert((event.order, None), event.event_date);
            truth.state = Some(state);
        }
        for (item, state) in &event.item_states {
            let key = (event.order, Some(item.clone()));
            if newest.get(&key).is_none_or(|date| *date < event.event_date) {
                newest.insert(key, event.event_date);
                truth.items.insert(item.clone(), *state);
            }
        }
    }
    truths
}

/// The order's state and item states, as the simulator expects them and as the listener's
/// projection (`None`: no such order) shows them.
fn compare_projection(truth: &OrderTruth, projection: Option<&Value>) -> (Value, Value) {
    let expected = json!({"state": truth.state, "items": truth.items});
    let actual = match projection {
        None => json!({"state": null, "items": {}}),
        Some(body) => {
            let items: BTreeMap<String, Value> = body["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| {
                    (
                        item["id"].as_str().unwrap_or_default().to_owned(),
                        item["state"].clone(),
                    )
                })
                .collect();
            json!({"state": body["state"], "items": items})
        }
    };
    (expected, actual)
}

/// MEF's events carry references; until the listener fetches the orders they refer to, it
/// knows only what the payloads carry. v6: the order's state (state changes) and the items'
/// states (item state changes), exactly as `compare_projection` checks them. v5: no state at
/// all, so only that the order exists with one timeline entry per acknowledged event.
///
/// Once the listener resolves references from the seller's Service Ordering API, widen this to
/// the seller's order (`seller_state`, every item, the dates).
fn compare_reference_payloads(
    dialect: Dialect,
    truth: &OrderTruth,
    projection: Option<&Value>,
) -> (Value, Value) {
    if dialect == Dialect::MefLegatoV6 {
        return compare_projection(truth, projection);
    }
    let expected = json!({
        "exists": truth.acknowledged_events > 0,
        "events": truth.acknowledged_events,
    });
    let actual = match projection {
        None => json!({"exists": false, "events": 0}),
        Some(body) => json!({
            "exists": true,
            "events": body["timeline"].as_array().map_or(0, Vec::len),
        }),
    };
    (expected, actual)
}

/// Checks every order through the listener's admin API.
pub(super) async fn verify(
    dialect: Dialect,
    admin: &str,
    token: Option<&str>,
    truth: &[OrderTruth],
    tls: &TlsOptions,
) -> anyhow::Result<Verification> {
    let token = token.context(
        "--verify-admin needs the admin token: set ORDER_LISTENER_ADMIN_TOKEN or --admin-token",
    )?;
    let http = crate::outbound::client(tls, Duration::from_secs(30), 4)?;
    let admin = admin.trim_end_matches('/');
    let mut verification = Verification {
        checked: 0,
        matching: 0,
        mismatches: Vec::new(),
    };
    for order in truth {
        let url = format!("{admin}/api/v1/service-orders/{}", order.id);
        let response = http
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::UNAUTHORIZED {
            bail!("the admin API refused the token (401); check ORDER_LISTENER_ADMIN_TOKEN");
        }
        let projection: Option<Value> = if status == reqwest::StatusCode::NOT_FOUND {
            None
        } else {
            Some(response.error_for_status()?.json().await?)
        };
        let (expected, actual) = if dialect.is_reference_only() {
            compare_reference_payloads(dialect, order, projection.as_ref())
        } else {
            compare_projection(order, projection.as_ref())
        };
        verification.checked += 1;
        if actual == expected {
            verification.matching += 1;
        } else {
            verification.mismatches.push(Mismatch {
                order: order.id.clone(),
                expected,
                actual,
            });
        }
    }
    Ok(verification)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(state: Option<State>, events: usize) -> OrderTruth {
        OrderTruth {
            id: "SO-1".into(),
            state,
            items: BTreeMap::from([("01".into(), State::Completed)]),
            acknowledged_events: events,
            seller_state: State::Completed,
        }
    }

    #[test]
    fn a_projection_is_compared_by_state_and_item_states() {
        let projection =
            json!({"state": "completed", "items": [{"id": "01", "state": "completed"}]});
        let (expected, actual) =
            compare_projection(&truth(Some(State::Completed), 3), Some(&projection));
        assert_eq!(expected, actual);
        let (expected, actual) =
            compare_projection(&truth(Some(State::Failed), 3), Some(&projection));
        assert_ne!(expected, actual);
    }

    #[test]
    fn mef_v5_is_compared_by_existence_and_event_count() {
        let projection = json!({"state": null, "items": [{"id": "01", "state": null}],
                                "timeline": [{}, {}, {}]});
        let (expected, actual) =
            compare_reference_payloads(Dialect::MefLegatoV5, &truth(None, 3), Some(&projection));
        assert_eq!(expected, actual);
        let (expected, actual) =
            compare_reference_payloads(Dialect::MefLegatoV5, &truth(None, 4), Some(&projection));
        assert_ne!(expected, actual);
        let (expected, actual) =
            compare_reference_payloads(Dialect::MefLegatoV5, &truth(None, 0), None);
        assert_eq!(
            expected, actual,
            "an order the listener never acknowledged is absent"
        );
    }
}
