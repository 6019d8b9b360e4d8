//! [`ApiQuery`]: the admin API's query-string extractor. It reads the query as axum's `Query`
//! does (serde_urlencoded), but a query that does not read is answered as every bad parameter
//! is, with the parameter in `referenceError`, never axum's plain-text rejection: 400 with code
//! 27 for a required parameter left out (the message says what to send, from the route's
//! [`Parameters`]), code 28 for a repeated parameter or a value of the wrong kind. The readers
//! of the parameters several routes share (`limit`, instants) are here too, with [`invalid`],
//! the error of a value that cannot be used.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::domain::envelope::EventDate;

/// Items a list answers with when `limit` is not given, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;

/// The query string, read into `T`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ApiQuery<T>(pub T);

/// The query parameters of one admin route, as [`ApiQuery`] reads them: a struct that
/// serde reads, where a required parameter is a field that is not an `Option`.
pub(crate) trait Parameters: DeserializeOwned {
    /// What to send for the required parameter `name`, as the 400/27 for its absence says it
    /// (`send since=<RFC 3339 date>`). A route with required parameters names each here.
    fn form_of(name: &str) -> &'static str {
        let _ = name;
        "value"
    }
}

impl<T: Parameters, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        read(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Reads a query string into `T`, naming the parameter that is missing or did not read.
pub(crate) fn read<T: Parameters>(query: &str) -> Result<T, ApiError> {
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let problem = error.inner().to_string();
        let path = error.path().to_string();
        if path != "." {
            return ApiError::MalformedQuery {
                name: path,
                problem,
            };
        }
        // A missing field and a repeated one fail at the top level; serde's messages
        // (`missing field `since``, `duplicate field `limit``) name it in backquotes.
        let name = problem.split('`').nth(1).unwrap_or("query").to_owned();
        if problem.starts_with("missing field") {
            let form = T::form_of(&name);
            ApiError::MissingQuery { name, form }
        } else {
            ApiError::MalformedQuery { name, problem }
        }
    })
}

/// A parameter whose value cannot be used (400/28), and why.
pub(crate) fn invalid(name: &'static str, problem: impl Into<String>) -> ApiError {
    ApiError::InvalidQuery {
        name,
        problem: problem.into(),
    }
}

/// A list's `limit`: 1 to 1000, 100 when not given.
pub(crate) fn parse_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
            _ => Err(invalid(
                "limit",
                format!("must be a whole number from 1 to {MAX_LIMIT} (got {text:?})"),
            )),
        },
    }
}

/// An instant parameter, read as eventDates are (RFC 3339, tolerant).
pub(crate) fn parse_instant(
    name: &'static str,
    text: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    text.map(|text| {
        text.parse::<EventDate>()
            .map(EventDate::as_datetime)
            .map_err(|_| {
                invalid(
                    name,
                    format!(
                        "must be a date and time such as 2019-03-25T08:08:56.310Z (got {text:?})"
                    ),
                )
            })
    })
    .transpose()
}

/// `[since, until)`, either end open when not given.
pub(crate) type TimeRange = (
    Option<chrono::DateTime<chrono::Utc>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// The half-open range `[since, until)` of two instant parameters, either of which may be
/// absent. An `until` at or before `since` is refused (400/28): such a range holds nothing, so
/// it is a mistake, and an empty answer would hide it.
pub(crate) fn parse_range(since: Option<&str>, until: Option<&str>) -> Result<TimeRange, ApiError> {
    let (from, to) = (
        parse_instant("since", since)?,
        parse_instant("until", until)?,
    );
    match (from, to) {
        (Some(from), Some(to)) if to <= from => Err(invalid(
            "until",
            format!(
                "must be after since (got since {}, until {})",
                since.unwrap_or_default(),
                until.unwrap_or_default()
            ),
        )),
        _ => Ok((from, to)),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Page {
        limit: Option<usize>,
        #[serde(default)]
        raw: bool,
    }

    impl Parameters for Page {}

    #[derive(Debug, Deserialize, PartialEq)]
    struct Range {
        since: String,
        until: String,
    }

    impl Parameters for Range {
        fn form_of(name: &str) -> &'static str {
            match name {
                "since" => "RFC 3339 date",
                _ => "value",
            }
        }
    }

    fn name(query: &str) -> String {
        match read::<Page>(query) {
            Err(ApiError::MalformedQuery { name, .. }) => name,
            other => panic!("{query}: {other:?}"),
        }
    }

    #[test]
    fn a_query_that_does_not_read_names_its_parameter() {
        assert_eq!(
            read::<Page>("limit=3").unwrap(),
            Page {
                limit: Some(3),
                raw: false
            }
        );
        assert_eq!(name("limit=1&limit=2"), "limit");
        assert_eq!(name("raw=maybe"), "raw");
        assert_eq!(name("limit=-1"), "limit");
        let error = read::<Page>("raw=maybe").unwrap_err();
        assert_eq!(error.reference().as_deref(), Some("query:raw"));
    }

    #[test]
    fn a_missing_required_parameter_is_named_with_what_to_send() {
        for (query, name, form) in [
            ("until=x", "since", "RFC 3339 date"),
            ("since=x", "until", "value"),
        ] {
            match read::<Range>(query) {
                Err(ApiError::MissingQuery {
                    name: missing,
                    form: said,
                }) => assert_eq!((missing.as_str(), said), (name, form), "{query}"),
                other => panic!("{query}: {other:?}"),
            }
        }
        let error = read::<Range>("").unwrap_err();
        assert_eq!(error.code(), 27);
        assert_eq!(error.reference().as_deref(), Some("query:since"));
        assert_eq!(
            error.to_string(),
            "query parameter since is missing: send since=<RFC 3339 date>"
        );
        // Given twice, it is there, but does not read.
        let error = read::<Range>("since=a&since=b&until=c").unwrap_err();
        assert_eq!(error.code(), 28, "{error}");
    }
}
