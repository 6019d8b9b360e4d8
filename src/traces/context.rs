//! [`TraceContext`]: a W3C trace context (`traceparent`, and `tracestate` when it is valid),
//! parsed once from a seller's headers, stored with its event, and sent on to every sink.

use std::fmt;
use std::str::FromStr;

use axum::http::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The header names of W3C Trace Context.
pub(crate) const TRACEPARENT: &str = "traceparent";
/// See [`TRACEPARENT`].
pub(crate) const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` kept (W3C: at least 512 characters must be propagated; longer ones
/// may be dropped). A longer one is dropped, the `traceparent` is kept.
const MAX_TRACESTATE: usize = 512;

/// A W3C trace context: the trace and the span it continues, its flags, and the vendors'
/// `tracestate`. Built only from a valid `traceparent` (version `00`'s layout; a later version
/// is read as `00` reads it, as W3C asks); a `tracestate` that does not read is dropped.
///
/// Stored as its `traceparent`, then, when there is one, a comma and its `tracestate`: a
/// `traceparent` holds no comma, so the first comma separates them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: TraceId,
    span_id: SpanId,
    flags: TraceFlags,
    tracestate: Option<String>,
}

/// Why a `traceparent` was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a W3C traceparent: {0}")]
pub struct InvalidTraceparent(&'static str);

impl TraceContext {
    /// Reads `traceparent`, and `tracestate` when given and valid.
    pub fn parse(
        traceparent: &str,
        tracestate: Option<&str>,
    ) -> Result<TraceContext, InvalidTraceparent> {
        let invalid = InvalidTraceparent;
        let text = traceparent.trim_matches([' ', '\t']);
        let bytes = text.as_bytes();
        if bytes.len() < 55 {
            return Err(invalid("shorter than 55 characters"));
        }
        let version = &text[..2];
        if !is_lower_hex(version) || version == "ff" {
            return Err(invalid(
                "the version is not two lower-case hex digits below ff",
            ));
        }
        // Version 00 is exactly 55 characters; a later version may append fields after a dash.
        if (version == "00" && bytes.len() != 55) || (bytes.len() > 55 && bytes[55] != b'-') {
            return Err(invalid("the fields after the flags do not read"));
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return Err(invalid("the fields are not separated by dashes"));
        }
        let (trace_id, span_id, flags) = (&text[3..35], &text[36..52], &text[53..55]);
        if ![trace_id, span_id, flags]
            .iter()
            .all(|field| is_lower_hex(field))
        {
            return Err(invalid("a field is not lower-case hex"));
        }
        let trace_id = TraceId::from_hex(trace_id).map_err(|_| invalid("trace-id"))?;
        let span_id = SpanId::from_hex(span_id).map_err(|_| invalid("parent-id"))?;
        if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
            return Err(invalid("the trace-id or the parent-id is all zeros"));
        }
        let flags = u8::from_str_radix(flags, 16).map_err(|_| invalid("trace-flags"))?;
        Ok(TraceContext {
            trace_id,
            span_id,
            // Only the sampled flag is defined; the others are not passed on.
            flags: TraceFlags::new(flags) & TraceFlags::SAMPLED,
            tracestate: tracestate.and_then(valid_tracestate),
        })
    }

    /// The context a request's headers carry: one valid `traceparent` (two of them are
    /// ignored, as W3C asks), and its `tracestate` headers joined.
    pub fn from_headers(headers: &HeaderMap) -> Option<TraceContext> {
        let mut parents = headers.get_all(TRACEPARENT).iter();
        let (Some(parent), None) = (parents.next(), parents.next()) else {
            return None;
        };
        let states: Vec<&str> = headers
            .get_all(TRACESTATE)
            .iter()
            .map(|value| value.to_str().ok())
            .collect::<Option<_>>()
            .unwrap_or_default();
        let state = (!states.is_empty()).then(|| states.join(","));
        TraceContext::parse(parent.to_str().ok()?, state.as_deref()).ok()
    }

    /// The `traceparent` header's value, always version `00`.
    pub fn traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }

    /// The `tracestate` header's value, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The trace, as 32 hex digits.
    pub fn trace_id(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The span this context continues, as 16 hex digits.
    pub fn span_id(&self) -> String {
        format!("{:016x}", self.span_id)
    }

    /// Whether the caller sampled the trace.
    pub fn sampled(&self) -> bool {
        self.flags.is_sampled()
    }

    /// This context as OpenTelemetry's remote parent.
    pub(crate) fn span_context(&self) -> SpanContext {
        let state = self
            .tracestate
            .as_deref()
            .and_then(|text| TraceState::from_str(text).ok())
            .unwrap_or_default();
        SpanContext::new(self.trace_id, self.span_id, self.flags, true, state)
    }

    /// The context of an OpenTelemetry span, when it is valid.
    pub(crate) fn of_span(context: &SpanContext) -> Option<TraceContext> {
        context.is_valid().then(|| TraceContext {
            trace_id: context.trace_id(),
            span_id: context.span_id(),
            flags: context.trace_flags() & TraceFlags::SAMPLED,
            tracestate: valid_tracestate(&context.trace_state().header()),
        })
    }
}

impl fmt::Display for TraceContext {
    /// The stored form: `traceparent`, or `traceparent,tracestate`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.traceparent())?;
        if let Some(state) = &self.tracestate {
            write!(f, ",{state}")?;
        }
        Ok(())
    }
}

impl FromStr for TraceContext {
    type Err = InvalidTraceparent;

    /// Reads the stored form ([`fmt::Display`]).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.split_once(',') {
            Some((parent, state)) => TraceContext::parse(parent, Some(state)),
            None => TraceContext::parse(text, None),
        }
    }
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes()
        .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// A `tracestate` worth passing on: at most [`MAX_TRACESTATE`] characters and 32 members, each
/// `key=value` as W3C defines them. Empty list members and the spaces around members are
/// dropped.
fn valid_tracestate(text: &str) -> Option<String> {
    let members: Vec<&str> = text
        .split(',')
        .map(|member| member.trim_matches([' ', '\t']))
        .filter(|member| !member.is_empty())
        .collect();
    let joined = members.join(",");
    let readable = !members.is_empty()
        && members.len() <= 32
        && joined.len() <= MAX_TRACESTATE
        && members.iter().all(|member| {
            member
                .split_once('=')
                .is_some_and(|(key, value)| valid_key(key) && valid_value(value))
        });
    readable.then_some(joined)
}

/// `lcalpha 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/")`, or `tenant@system` (a tenant
/// may start with a digit).
fn valid_key(key: &str) -> bool {
    let rest = |text: &str| {
        text.bytes().all(|byte| {
            byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"_-*/".contains(&byte)
        })
    };
    let starts = |text: &str, digit: bool| {
        text.bytes()
            .next()
            .is_some_and(|first| first.is_ascii_lowercase() || (digit && first.is_ascii_digit()))
    };
    match key.split_once('@') {
        None => key.len() <= 256 && starts(key, false) && rest(key),
        Some((tenant, system)) => {
            tenant.len() <= 241
                && system.len() <= 14
                && starts(tenant, true)
                && starts(system, false)
                && rest(tenant)
                && rest(system)
        }
    }
}

/// Up to 256 printable ASCII characters but `,` and `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    value.len() <= 256
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|byte| (0x20..=0x7e).contains(&byte) && byte != b',' && byte != b'=')
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_reads_and_writes_back_the_same() {
        let context =
            TraceContext::parse(PARENT, Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")).unwrap();
        assert_eq!(context.traceparent(), PARENT);
        assert_eq!(context.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id(), "00f067aa0ba902b7");
        assert!(context.sampled());
        assert_eq!(
            context.tracestate(),
            Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
        );
        let stored = context.to_string();
        assert_eq!(stored.parse::<TraceContext>().unwrap(), context);
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for refused in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(refused, None).is_err(), "{refused:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_as_version_00_and_sent_on_as_00() {
        let context = TraceContext::parse(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-what-comes-later",
            None,
        )
        .unwrap();
        assert_eq!(
            context.traceparent(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "only the sampled flag is passed on"
        );
    }

    #[test]
    fn a_tracestate_that_does_not_read_is_dropped_and_the_traceparent_kept() {
        for dropped in [
            "=novalue",
            "a=b,c",
            &"k=v,".repeat(40),
            &format!("k={}", "v".repeat(600)),
        ] {
            let context = TraceContext::parse(PARENT, Some(dropped)).unwrap();
            assert_eq!(context.tracestate(), None, "{dropped:?}");
        }
        let spaced = TraceContext::parse(PARENT, Some(" a=1 , ,b=2 ")).unwrap();
        assert_eq!(spaced.tracestate(), Some("a=1,b=2"));
    }

    #[test]
    fn headers_give_one_traceparent_and_every_tracestate() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, PARENT.parse().unwrap());
        headers.append(TRACESTATE, "a=1".parse().unwrap());
        headers.append(TRACESTATE, "b=2".parse().unwrap());
        let context = TraceContext::from_headers(&headers).unwrap();
        assert_eq!(context.tracestate(), Some("a=1,b=2"));
        headers.append(TRACEPARENT, PARENT.parse().unwrap());
        assert_eq!(
            TraceContext::from_headers(&headers),
            None,
            "two traceparents"
        );
        assert_eq!(TraceContext::from_headers(&HeaderMap::new()), None);
    }

    #[test]
    fn a_span_context_round_trips() {
        let context = TraceContext::parse(PARENT, Some("a=1")).unwrap();
        let span = context.span_context();
        assert!(span.is_remote());
        assert_eq!(TraceContext::of_span(&span), Some(context));
        assert_eq!(TraceContext::of_span(&SpanContext::empty_context()), None);
    }
}
