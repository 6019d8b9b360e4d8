//! The sender's identifiers: [`EventId`] and [`OrderId`], non-empty, at most [`MAX_ID_LEN`]
//! characters, without control characters. Built only by parsing; no IO.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest eventId or order id accepted, in characters (as JSON Schema counts `maxLength`).
pub const MAX_ID_LEN: usize = 256;

/// Checks a sender-given identifier: non-empty, not too long, no control characters.
fn check_identifier(text: &str) -> Result<(), &'static str> {
    if text.is_empty() {
        Err("must not be empty")
    } else if text.chars().count() > MAX_ID_LEN {
        Err("must be at most 256 characters long")
    } else if text.chars().any(char::is_control) {
        Err("must not contain control characters")
    } else {
        Ok(())
    }
}

macro_rules! identifier {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The identifier as the sender wrote it.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = &'static str;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                check_identifier(&text)?;
                Ok(Self(text))
            }
        }

        impl FromStr for $name {
            type Err = &'static str;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::try_from(text.to_owned())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Self::try_from(text).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

identifier!(
    /// The seller's identifier of one notification; the key for deduplication.
    EventId
);
identifier!(
    /// The seller's identifier of a service order (`event.id`).
    OrderId
);
