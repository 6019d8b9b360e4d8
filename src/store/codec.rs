//! The compact stored forms, shared by both backends: an event's facts and an order's fold,
//! as postcard bytes behind a one-byte format version. Rows written before these forms keep
//! their facts as JSON text; [`decode_facts`] reads either. A fold of an older version does not
//! read: the append pipeline then rebuilds it from the order's events.

use serde::{Deserialize, Serialize};

use super::StoreError;
use crate::domain::envelope::{ItemFact, OrderFacts, OrderId};
use crate::domain::fold::Fold;
use crate::domain::state::State;

/// The version byte of the facts written today.
const FACTS_VERSION: u8 = 1;
/// The version byte of the folds written today: 2 added the suspect rules' evidence.
const FOLD_VERSION: u8 = 2;

/// [`OrderFacts`] without the order id (a column of its own) and without serde's skipping,
/// which a format without field names cannot read back.
#[derive(Serialize, Deserialize)]
struct Facts {
    state: Option<State>,
    external_id: Option<String>,
    order_date: Option<String>,
    completion_date_time: Option<String>,
    items: Vec<Item>,
}

#[derive(Serialize, Deserialize)]
struct Item {
    id: String,
    state: Option<State>,
    action: Option<String>,
}

fn corrupt(what: &str, error: impl std::fmt::Display) -> StoreError {
    super::internal(format!("stored {what} cannot be read: {error}"))
}

fn encode<T: Serialize>(version: u8, value: &T) -> Vec<u8> {
    let mut bytes = vec![version];
    // postcard only fails on a writer that is full or a type it cannot encode; a Vec and
    // these types are neither.
    if let Ok(encoded) = postcard::to_stdvec(value) {
        bytes.extend_from_slice(&encoded);
    }
    bytes
}

fn decode<'a, T: Deserialize<'a>>(
    version: u8,
    what: &str,
    bytes: &'a [u8],
) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((found, rest)) if *found == version => {
            postcard::from_bytes(rest).map_err(|error| corrupt(what, error))
        }
        Some((version, _)) => Err(corrupt(what, format!("unknown format {version}"))),
        None => Err(corrupt(what, "empty")),
    }
}

/// The compact form of an event's facts.
pub(super) fn encode_facts(facts: &OrderFacts) -> Vec<u8> {
    encode(
        FACTS_VERSION,
        &Facts {
            state: facts.state,
            external_id: facts.external_id.clone(),
            order_date: facts.order_date.clone(),
            completion_date_time: facts.completion_date_time.clone(),
            items: facts
                .items
                .iter()
                .map(|item| Item {
                    id: item.id.clone(),
                    state: item.state,
                    action: item.action.clone(),
                })
                .collect(),
        },
    )
}

/// An event's facts from its compact form, or from the JSON text of rows written before it.
pub(super) fn decode_facts(
    order_id: &OrderId,
    compact: Option<&[u8]>,
    json: Option<&str>,
) -> Result<OrderFacts, StoreError> {
    match (compact, json) {
        (Some(bytes), _) => {
            let facts: Facts = decode(FACTS_VERSION, "facts", bytes)?;
            Ok(OrderFacts {
                order_id: order_id.clone(),
                state: facts.state,
                external_id: facts.external_id,
                order_date: facts.order_date,
                completion_date_time: facts.completion_date_time,
                items: facts
                    .items
                    .into_iter()
                    .map(|item| ItemFact {
                        id: item.id,
                        state: item.state,
                        action: item.action,
                    })
                    .collect(),
            })
        }
        (None, Some(json)) => {
            serde_json::from_str::<OrderFacts>(json).map_err(|error| corrupt("facts", error))
        }
        (None, None) => Err(corrupt("facts", "missing")),
    }
}

/// The stored form of an order's fold.
pub(super) fn encode_fold(fold: &Fold) -> Vec<u8> {
    encode(FOLD_VERSION, fold)
}

/// An order's fold from its stored form.
pub(super) fn decode_fold(bytes: &[u8]) -> Result<Fold, StoreError> {
    decode(FOLD_VERSION, "fold", bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::envelope::{Dialect, EventDate, EventType};
    use crate::domain::fold::Step;

    fn facts() -> OrderFacts {
        OrderFacts {
            order_id: "o-1".parse().unwrap(),
            state: Some(State::InProgress),
            external_id: Some("ext é".into()),
            order_date: None,
            completion_date_time: Some("2019-03-25T08:08:56.310Z".into()),
            items: vec![ItemFact {
                id: "1".into(),
                state: None,
                action: Some("add".into()),
            }],
        }
    }

    #[test]
    fn facts_survive_both_forms() {
        let facts = facts();
        let compact = encode_facts(&facts);
        assert_eq!(
            decode_facts(&facts.order_id, Some(&compact), None).unwrap(),
            facts
        );
        let json = serde_json::to_string(&facts).unwrap();
        assert_eq!(
            decode_facts(&facts.order_id, None, Some(&json)).unwrap(),
            facts
        );
        assert!(compact.len() < json.len() / 2, "{compact:?} against {json}");
    }

    #[test]
    fn a_fold_survives_and_garbage_is_an_error() {
        let facts = facts();
        let step = Step::new(
            &"e1".parse().unwrap(),
            EventType::ServiceOrderStateChange,
            EventDate::from_timestamp_micros(1).unwrap(),
            &facts,
            Dialect::Tmf641V4,
        );
        let fold = Fold::rebuild(vec![step]);
        assert_eq!(decode_fold(&encode_fold(&fold)).unwrap(), fold);
        assert!(decode_fold(b"\x02\xff\xff").is_err());
        let mut older = encode_fold(&fold);
        older[0] = 1;
        assert!(
            decode_fold(&older).is_err(),
            "a fold written before the suspect rules is rebuilt"
        );
        assert!(decode_fold(b"\x07").is_err());
        assert!(decode_fold(b"").is_err());
    }
}
