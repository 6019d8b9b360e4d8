//! [`EventDate`]: when the seller says an event happened, parsed tolerantly from the forms
//! senders are known to use (RFC 3339, and Java's `+0000` offsets) and kept in UTC to the
//! microsecond. No IO.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// When the seller says the event happened (`eventDate`), in UTC with microsecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventDate(DateTime<Utc>);

impl EventDate {
    /// Microseconds since the Unix epoch; what the store sorts on.
    pub fn timestamp_micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The inverse of [`EventDate::timestamp_micros`].
    pub fn from_timestamp_micros(micros: i64) -> Option<Self> {
        DateTime::from_timestamp_micros(micros).map(EventDate)
    }

    /// The date as a UTC date-time.
    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }
}

impl From<DateTime<Utc>> for EventDate {
    fn from(date: DateTime<Utc>) -> Self {
        // Sub-microsecond digits are dropped so that a date survives a round trip through the
        // store unchanged.
        let micros = date.timestamp_micros();
        EventDate(DateTime::from_timestamp_micros(micros).unwrap_or(date))
    }
}

impl fmt::Display for EventDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

/// The latest date accepted as epoch milliseconds: 9999-12-31T23:59:59.999Z.
pub const MAX_EPOCH_MILLIS: i64 = 253_402_300_799_999;

/// The earliest date accepted as epoch milliseconds: 1973-03-03T09:46:40Z. A smaller number is
/// far more likely seconds since the epoch (1553501336 is 2019 in seconds, and 1970-01-18 in
/// milliseconds), and is refused with that hint rather than stored as a date in 1970.
pub const MIN_EPOCH_MILLIS: i64 = 100_000_000_000;

impl EventDate {
    /// A date sent as a JSON number of milliseconds since the Unix epoch, as Casablanca's NBI
    /// wrote `java.util.Date` (Jackson's default before Dublin's date format): a whole number
    /// from [`MIN_EPOCH_MILLIS`] (1973) to [`MAX_EPOCH_MILLIS`] (9999). `1553501336310.0` is
    /// whole too.
    pub fn from_epoch_millis(number: &serde_json::Number) -> Result<Self, InvalidEpochMillis> {
        let invalid = || InvalidEpochMillis {
            number: number.to_string(),
            seconds: None,
        };
        let millis = whole_millis(number).ok_or_else(invalid)?;
        if (0..MIN_EPOCH_MILLIS).contains(&millis) {
            return Err(InvalidEpochMillis {
                seconds: DateTime::from_timestamp(millis, 0).map(EventDate::from),
                ..invalid()
            });
        }
        Self::from_millis_from(millis, MIN_EPOCH_MILLIS).ok_or_else(invalid)
    }

    /// As [`EventDate::from_epoch_millis`], for a body a listener stored before the 1973 floor
    /// was set: from 0, as the releases before it read numbers, so that a resent or imported
    /// event keeps the date it was stored with.
    pub fn from_stored_epoch_millis(
        number: &serde_json::Number,
    ) -> Result<Self, InvalidEpochMillis> {
        whole_millis(number)
            .and_then(|millis| Self::from_millis_from(millis, 0))
            .ok_or_else(|| InvalidEpochMillis {
                number: number.to_string(),
                seconds: None,
            })
    }

    /// `millis` as a date, when it lies from `earliest` to [`MAX_EPOCH_MILLIS`].
    fn from_millis_from(millis: i64, earliest: i64) -> Option<Self> {
        if !(earliest..=MAX_EPOCH_MILLIS).contains(&millis) {
            return None;
        }
        DateTime::from_timestamp_millis(millis).map(EventDate::from)
    }
}

/// A JSON number as whole milliseconds: an integer, or a float with no fraction
/// (`1553501336310.0`).
fn whole_millis(number: &serde_json::Number) -> Option<i64> {
    number.as_i64().or_else(|| {
        number
            .as_f64()
            .filter(|float| float.fract() == 0.0 && float.abs() < 1e18)
            .map(|float| float as i64)
    })
}

/// A number that is not whole epoch milliseconds between 1973 and 9999.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{number} is not a date: {hint}a number must be whole milliseconds since \
     1970-01-01T00:00:00Z, from 100000000000 (1973) to 253402300799999; or send an RFC 3339 \
     string such as 2019-03-25T08:08:56.310Z",
    hint = seconds.map(|date| format!("it looks like seconds since the epoch ({date}), while ")).unwrap_or_default()
)]
pub struct InvalidEpochMillis {
    /// The number as sent.
    pub number: String,
    /// The date it would be as seconds, when it is small enough to be seconds.
    pub seconds: Option<EventDate>,
}

/// The text was not a date-time in any form that senders are known to use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not an RFC 3339 date-time; send a date with a time and an offset, \
     such as 2019-03-25T08:08:56.310Z"
)]
pub struct InvalidDate(pub String);

impl FromStr for EventDate {
    type Err = InvalidDate;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        // RFC 3339 covers ONAP's `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` and dates with no fraction.
        // Java's `Z` pattern letter gives `+0000` offsets, with or without a fraction.
        DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
            .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%z"))
            .map(|date| EventDate::from(date.with_timezone(&Utc)))
            .map_err(|_| InvalidDate(text.to_owned()))
    }
}

impl Serialize for EventDate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventDate {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_the_forms_senders_use_are_accepted() {
        let cases = [
            ("2019-03-25T08:08:56.310Z", "2019-03-25T08:08:56.310Z"),
            ("2019-03-25T08:08:56Z", "2019-03-25T08:08:56Z"),
            ("2019-03-25T09:08:56.310+01:00", "2019-03-25T08:08:56.310Z"),
            ("2019-03-25T08:08:56.310+0000", "2019-03-25T08:08:56.310Z"),
            ("2019-03-25T08:08:56+0000", "2019-03-25T08:08:56Z"),
            (
                "2019-03-25T08:08:56.123456789Z",
                "2019-03-25T08:08:56.123456Z",
            ),
        ];
        for (given, normalised) in cases {
            let date: EventDate = given.parse().unwrap_or_else(|e| panic!("{given}: {e}"));
            assert_eq!(date.to_string(), normalised);
        }
        for bad in [
            "2019-03-25",
            "2019-03-25T08:08:56",
            "yesterday",
            "",
            "2019-13-25T08:08:56Z",
        ] {
            assert!(bad.parse::<EventDate>().is_err(), "{bad} should be refused");
        }
    }
}
