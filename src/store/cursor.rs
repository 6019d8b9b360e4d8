//! [`Cursor`]: a place in the stream of committed events, as the event stream's message ids
//! print it.

/// A place in the stream of committed events (`GET /api/v1/stream`): [`Store::follow`] reads
/// the events after it in an order in which no event can still appear behind a reader. On
/// SQLite (one writer) that is the receipt sequence. On PostgreSQL, where replicas commit
/// concurrently, it is the writing transaction's id, then the sequence, and only events
/// written by transactions older than every transaction still running are read.
///
/// It prints as the sequence alone when `tx` is 0 (SQLite, and PostgreSQL rows written
/// before), otherwise as `tx-sequence`; clients should treat it as opaque.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The writing transaction (PostgreSQL's xid8), 0 where it does not apply.
    pub tx: u64,
    /// The receipt sequence.
    pub sequence: i64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tx == 0 {
            write!(f, "{}", self.sequence)
        } else {
            write!(f, "{}-{}", self.tx, self.sequence)
        }
    }
}

/// The text is not a stream position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "not a stream position: expected the id of an SSE message (a whole number from 0, or two joined by `-`)"
)]
pub struct InvalidCursor;

impl std::str::FromStr for Cursor {
    type Err = InvalidCursor;

    fn from_str(text: &str) -> Result<Cursor, InvalidCursor> {
        let number = |text: &str| -> Result<u64, InvalidCursor> {
            if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
                return Err(InvalidCursor);
            }
            text.parse().map_err(|_| InvalidCursor)
        };
        let (tx, sequence) = match text.split_once('-') {
            Some((tx, sequence)) => (number(tx)?, number(sequence)?),
            None => (0, number(text)?),
        };
        Ok(Cursor {
            tx,
            sequence: i64::try_from(sequence).map_err(|_| InvalidCursor)?,
        })
    }
}
