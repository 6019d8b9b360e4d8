//! The body as JSON, read strictly: an object key given twice, at any depth, is refused rather
//! than letting the last one win, so that no two readers of the same bytes (this listener, a
//! signature check, the buyer's systems downstream) can disagree on what an event says. A
//! leading byte-order mark, which JSON forbids (RFC 8259, section 8.1), is named as such.

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, Error, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Number, Value};

/// Parses `raw` as one JSON value, refusing duplicate object keys. The error says what is
/// wrong and where.
pub(super) fn parse(raw: &[u8]) -> Result<Value, String> {
    if raw.starts_with(b"\xEF\xBB\xBF") {
        return Err(
            "the body starts with a UTF-8 byte-order mark (EF BB BF), which JSON does \
                    not allow: send the JSON text without it"
                .to_owned(),
        );
    }
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value = Strict
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|error| format!("the body is not valid JSON: {error}"))?;
    Ok(value)
}

/// Builds a [`Value`] as `serde_json` does, except that a key seen twice in one object is an
/// error.
#[derive(Clone, Copy)]
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(value) = seq.next_element_seed(self)? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            match object.entry(key) {
                Entry::Vacant(entry) => {
                    entry.insert(value);
                }
                Entry::Occupied(entry) => {
                    return Err(A::Error::custom(format_args!(
                        "the key `{}` appears twice in one object; send it once",
                        entry.key()
                    )));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_what_serde_json_reads() {
        let text =
            br#"{"a": [1, -2, 3.5, "x", null, true], "b": {"c": {}}, "d": 18446744073709551615}"#;
        assert_eq!(
            parse(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
        assert_eq!(parse(b" 7 ").unwrap(), json!(7));
    }

    #[test]
    fn refuses_a_key_given_twice_at_any_depth() {
        let error = parse(br#"{"eventId": "a", "eventId": "b"}"#).unwrap_err();
        assert!(error.contains("`eventId` appears twice"), "{error}");
        assert!(error.contains("line 1"), "says where: {error}");
        let error = parse(br#"{"event": {"orderItem": [{"id": "1", "id": "2"}]}}"#).unwrap_err();
        assert!(error.contains("`id` appears twice"), "{error}");
        // The same key in two objects is fine.
        assert!(parse(br#"[{"id": 1}, {"id": 2}]"#).is_ok());
    }

    #[test]
    fn names_a_byte_order_mark_and_trailing_text() {
        let error = parse(b"\xEF\xBB\xBF{}").unwrap_err();
        assert!(error.contains("byte-order mark"), "{error}");
        let error = parse(b"{} {}").unwrap_err();
        assert!(error.contains("trailing characters"), "{error}");
    }
}
