//! `GET /api/v1/stream` on the admin port: stored events as Server-Sent Events, in sequence
//! order, first those after the client's resume point, then new ones as they are committed.
//!
//! Each message is `id:` the event's stream position ([`Cursor`]: its sequence on SQLite),
//! `event:` its eventType, and `data:` one JSON line: the event's record (as `GET
//! /api/v1/events` lists it, its dialect and reference included) with `body`, the notification
//! as its dialect sent it. A client that reconnects with `Last-Event-ID` (or `?since=`) gets
//! every event after that id, so nothing is missed or repeated. Without either, the stream
//! starts at the newest committed event: only events committed after the connection are sent.
//!
//! The stream reads the store a bounded page at a time and waits on the store's commit
//! announcements between pages; it holds no lock across an await, and ends when the app stops.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::ApiError;
use super::query::{ApiQuery, Parameters};
use crate::store::{Cursor, EventRecord, Store, StoreError};

/// The most events read from the store at once.
const PAGE: usize = 500;

/// How often an idle stream sends a comment, so that proxies keep the connection open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The header a reconnecting EventSource sends.
const LAST_EVENT_ID: &str = "last-event-id";

/// `GET /api/v1/stream` parameters.
#[derive(Debug, Deserialize)]
pub(crate) struct StreamQuery {
    /// Send events after this position (an SSE message's id), for clients that cannot set
    /// `Last-Event-ID`.
    since: Option<String>,
}

impl Parameters for StreamQuery {}

/// Streams events after the resume point, then live ones, until the client leaves or the app
/// stops.
pub(crate) async fn stream(
    State(app): State<AppState>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<StreamQuery>,
) -> Result<Response, ApiError> {
    let resume = resume_point(&headers, query.since.as_deref())?;
    let commits = app
        .store
        .commits()
        .ok_or(ApiError::Store(StoreError::ReadOnly))?
        .sequence;
    let after = match resume {
        Some(cursor) => cursor,
        None => app.store.stream_head().await?,
    };
    let follow = Follow {
        store: app.store.clone(),
        commits,
        after,
        page: VecDeque::new(),
        shutdown: app.shutdown.clone(),
        failed: false,
    };
    let events = futures_util::stream::unfold(follow, Follow::next);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

/// Where to resume: `Last-Event-ID` wins over `?since=`, because a browser's EventSource keeps
/// its first URL and sends the header when it reconnects. `None` means from now.
fn resume_point(headers: &HeaderMap, since: Option<&str>) -> Result<Option<Cursor>, ApiError> {
    let sequence = |name: &'static str, text: &str| {
        text.parse::<Cursor>()
            .map(Some)
            .map_err(|_| ApiError::InvalidQuery {
                name,
                problem: format!(
                    "must be the id of an SSE message: a whole number from 0, or two joined \
                     by `-` (got {text:?})"
                ),
            })
    };
    // A `since` that is given must read, even when the header wins over it.
    let since = since.map_or(Ok(None), |text| sequence("since", text))?;
    match headers.get(LAST_EVENT_ID) {
        // EventSource sends an empty Last-Event-ID when no message had an id.
        Some(value) if !value.as_bytes().iter().all(u8::is_ascii_whitespace) => {
            let text = value.to_str().map_err(|_| ApiError::InvalidQuery {
                name: "Last-Event-ID",
                problem: "must be the id of an SSE message, in ASCII".to_owned(),
            })?;
            sequence("Last-Event-ID", text.trim())
        }
        _ => Ok(since),
    }
}

/// The state of one stream between messages.
struct Follow {
    store: Store,
    commits: watch::Receiver<i64>,
    /// The position of the last event sent (or the resume point).
    after: Cursor,
    /// Events read and not sent yet.
    page: VecDeque<(Cursor, EventRecord, Bytes)>,
    shutdown: CancellationToken,
    /// Set once an error was sent: the stream then ends, and the client resumes from its last id.
    failed: bool,
}

impl Follow {
    /// The next message, waiting for a commit when every stored event has been sent.
    async fn next(mut self) -> Option<(Result<Event, StoreError>, Follow)> {
        if self.failed {
            return None;
        }
        loop {
            if let Some((cursor, record, body)) = self.page.pop_front() {
                self.after = cursor;
                let message = message(cursor, &record, &body);
                self.failed = message.is_err();
                return Some((message, self));
            }
            // Mark the announcement seen before reading, so that a commit that lands after the
            // read wakes the wait below.
            self.commits.borrow_and_update();
            let read = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                read = self.store.follow(self.after, PAGE) => read,
            };
            match read {
                Ok(page) if !page.is_empty() => {
                    self.page.extend(page);
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(
                        error = %crate::telemetry::error_chain(&error),
                        after = %self.after,
                        "event stream could not read the store; ending it"
                    );
                    self.failed = true;
                    return Some((Err(error), self));
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                changed = self.commits.changed() => {
                    if changed.is_err() {
                        // The writer stopped: the store is closing.
                        return None;
                    }
                }
            }
        }
    }
}

/// One SSE message: the record's fields and the parsed body, on one line.
fn message(cursor: Cursor, record: &EventRecord, body: &[u8]) -> Result<Event, StoreError> {
    let internal = |error: serde_json::Error| StoreError::Internal(Arc::new(error));
    let body: serde_json::Value = serde_json::from_slice(body).map_err(internal)?;
    let mut data = serde_json::to_value(record).map_err(internal)?;
    data["body"] = body;
    // serde_json escapes line breaks inside strings, so the data is a single line.
    Ok(Event::default()
        .id(cursor.to_string())
        .event(record.event_type.as_str())
        .data(data.to_string()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with_last_event_id(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(LAST_EVENT_ID, HeaderValue::from_str(value).unwrap());
        headers
    }

    fn at(sequence: i64) -> Option<Cursor> {
        Some(Cursor { tx: 0, sequence })
    }

    #[test]
    fn last_event_id_wins_over_since_and_neither_means_from_now() {
        assert_eq!(
            resume_point(&with_last_event_id("42"), Some("7")).unwrap(),
            at(42)
        );
        assert_eq!(resume_point(&HeaderMap::new(), Some("7")).unwrap(), at(7));
        assert_eq!(
            resume_point(&with_last_event_id(""), Some("7")).unwrap(),
            at(7)
        );
        assert_eq!(resume_point(&HeaderMap::new(), None).unwrap(), None);
        assert_eq!(resume_point(&HeaderMap::new(), Some("0")).unwrap(), at(0));
        assert_eq!(
            resume_point(&with_last_event_id("812-42"), None).unwrap(),
            Some(Cursor {
                tx: 812,
                sequence: 42
            })
        );
    }

    #[test]
    fn a_position_prints_as_it_parses() {
        for cursor in [
            Cursor::default(),
            Cursor { tx: 0, sequence: 9 },
            Cursor {
                tx: 1 << 40,
                sequence: 3,
            },
        ] {
            assert_eq!(cursor.to_string().parse::<Cursor>(), Ok(cursor));
        }
        assert_eq!(Cursor { tx: 0, sequence: 9 }.to_string(), "9");
    }

    #[test]
    fn a_resume_point_that_is_not_a_sequence_is_refused() {
        for bad in ["-1", "abc", "1.5", "1-", "-", "1-2-3", "+4"] {
            assert!(
                matches!(
                    resume_point(&with_last_event_id(bad), None),
                    Err(ApiError::InvalidQuery {
                        name: "Last-Event-ID",
                        ..
                    })
                ),
                "{bad}"
            );
            assert!(
                matches!(
                    resume_point(&HeaderMap::new(), Some(bad)),
                    Err(ApiError::InvalidQuery { name: "since", .. })
                ),
                "{bad}"
            );
        }
    }
}
