//! [`Source`]: who wrote an event. Every event a seller sends is `seller`; the listener writes
//! `reconciled` events itself when the seller's Service Ordering API shows an order the
//! notifications left behind (`domain::reconcile`). A source is stored with the event, shown
//! wherever the event is, and passed on to sinks, so that a synthesized event is never taken
//! for a seller's own.

use std::str::FromStr;

/// Who wrote an event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A seller's notification, as received.
    #[default]
    Seller,
    /// Synthesized by the listener from the order the seller's API answered.
    Reconciled,
}

impl Source {
    /// Every source.
    pub const ALL: [Source; 2] = [Source::Seller, Source::Reconciled];

    /// Its name: `seller` or `reconciled`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Seller => "seller",
            Source::Reconciled => "reconciled",
        }
    }

    /// Whether the listener wrote it.
    pub fn is_synthesized(self) -> bool {
        self == Source::Reconciled
    }

    /// The stored column: `NULL` for a seller's event (every event stored before sources
    /// existed is one), the name otherwise.
    pub fn column(self) -> Option<&'static str> {
        self.is_synthesized().then(|| self.as_str())
    }

    /// The source of a stored column.
    pub fn from_column(column: Option<&str>) -> Result<Source, String> {
        column.map_or(Ok(Source::Seller), str::parse)
    }
}

impl FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == text)
            .ok_or_else(|| format!("unknown source {text:?}; use seller or reconciled"))
    }
}

by_name!(Source);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_reads_back_from_its_name_and_its_column() {
        crate::domain::envelope::assert_names_read_back(Source::ALL, "robot", "reconciled");
        for source in Source::ALL {
            assert_eq!(Source::from_column(source.column()), Ok(source));
        }
        assert_eq!(
            Source::Seller.column(),
            None,
            "a seller's event stores NULL"
        );
    }
}
