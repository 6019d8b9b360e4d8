//! HTML building blocks for the console: escaping, the page layout, badges, times and
//! durations. Every value that comes from a notification or the store goes through [`esc`].

use crate::store::Cursor;
use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::domain::envelope::OrderId;
use crate::domain::state::State;
use crate::domain::suspect::{Reason, Reasons};

/// Text escaped for HTML content and for attribute values in double or single quotes.
pub(super) fn esc(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            other => escaped.push(other),
        }
    }
    escaped
}

/// A path segment percent-encoded for an `href` (and then HTML-escaped by the caller).
pub(super) fn path_segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The console's pages, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    /// `/console/`.
    Overview,
    /// `/console/orders` and an order's page.
    Orders,
    /// `/console/suspects`.
    Suspects,
    /// `/console/events`.
    Events,
    /// `/console/sinks`.
    Sinks,
}

/// What the layout needs beyond the page's own content.
#[derive(Debug)]
pub(super) struct Layout<'a> {
    /// The page's title and `h1`.
    pub title: &'a str,
    /// Which navigation entry is current.
    pub nav: Nav,
    /// The session's CSRF token, for the logout form.
    pub csrf: &'a str,
    /// How the page stays current: attributes of `body` that console.js reads.
    pub live: Live<'a>,
}

/// How console.js keeps a page current.
#[derive(Debug, Clone, Copy)]
pub(super) enum Live<'a> {
    /// Regions marked `data-live` are fetched again on every event of the stream after this
    /// sequence.
    Stream {
        /// The stream's position when the page was read.
        since: Cursor,
    },
    /// As `Stream`, only for events of this order.
    Order {
        /// The stream's position when the page was read.
        since: Cursor,
        /// The order.
        order_id: &'a str,
    },
    /// Regions marked `data-live` are fetched again every few seconds (the outbox changes
    /// without events).
    Poll,
}

/// A whole console page around `content`.
pub(super) fn page(layout: &Layout<'_>, content: &str) -> String {
    let mut body_attributes = String::new();
    match layout.live {
        Live::Stream { since } => {
            let _ = write!(body_attributes, r#" data-stream-since="{since}""#);
        }
        Live::Order { since, order_id } => {
            let _ = write!(
                body_attributes,
                r#" data-stream-since="{since}" data-order-id="{}""#,
                esc(order_id)
            );
        }
        Live::Poll => body_attributes.push_str(r#" data-poll="5000""#),
    }
    let mut nav = String::new();
    for (entry, href, label) in [
        (Nav::Overview, "/console/", "Overview"),
        (Nav::Orders, "/console/orders", "Orders"),
        (Nav::Suspects, "/console/suspects", "Suspects"),
        (Nav::Events, "/console/events", "Events"),
        (Nav::Sinks, "/console/sinks", "Sinks"),
    ] {
        let current = if entry == layout.nav {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(nav, r#"<li><a href="{href}"{current}>{label}</a></li>"#);
    }
    format!(
        r##"{head}
<body{body_attributes}>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<p class="brand">order-listener</p>
<nav aria-label="Console"><ul>{nav}</ul></nav>
<form method="post" action="/console/logout" class="logout">
<input type="hidden" name="csrf" value="{csrf}">
<button type="submit">Log out</button>
</form>
</header>
<main id="main" tabindex="-1">
<h1>{title}</h1>
{content}
</main>
<footer><p>Live updates: <span id="live-status" role="status" aria-live="polite">off (reload to refresh)</span></p></footer>
</body>
</html>
"##,
        head = head(
            layout.title,
            "<script src=\"/console/assets/console.js\" defer></script>\n"
        ),
        title = esc(layout.title),
        csrf = esc(layout.csrf),
    )
}

/// The start of every console page up to its `</head>`: the title, the style sheet and
/// `extra` (a script, with its line's end).
pub(super) fn head(title: &str, extra: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · order-listener console</title>
<link rel="stylesheet" href="/console/assets/console.css">
{extra}</head>"#,
        title = esc(title),
    )
}

/// A page that says why the page asked for cannot be shown (a bad filter, an unknown order, a
/// store that failed), with a way back. It has no session's form, so it needs none.
pub(super) fn error_page(title: &str, message: &str) -> String {
    format!(
        r##"{head}
<body>
<header class="top">
<p class="brand">order-listener</p>
</header>
<main id="main">
<h1>{title}</h1>
<p class="error">{message}</p>
<p><a href="/console/orders">Back to the orders</a> · <a href="/console/">Overview</a></p>
</main>
</body>
</html>
"##,
        head = head(title, ""),
        title = esc(title),
        message = esc(message),
    )
}

/// The `<option>`s of a filter's `<select>`: "any" first (the empty value), then each of
/// `choices`, with `selected` marked.
pub(super) fn select_options<'a>(
    any: &str,
    choices: impl IntoIterator<Item = &'a str>,
    selected: Option<&str>,
) -> String {
    let mut options = format!(r#"<option value="">{}</option>"#, esc(any));
    for choice in choices {
        let marked = if Some(choice) == selected {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            options,
            r#"<option value="{0}"{marked}>{0}</option>"#,
            esc(choice)
        );
    }
    options
}

/// A checkbox's `checked` attribute when `on`.
pub(super) fn checked(on: bool) -> &'static str {
    if on { " checked" } else { "" }
}

/// A link to an order's page, or a dash for an event without an order.
pub(super) fn order_link(order: Option<&OrderId>) -> String {
    order.map_or_else(
        || "—".to_owned(),
        |order| {
            format!(
                r#"<a href="/console/orders/{}">{}</a>"#,
                esc(&path_segment(order.as_str())),
                esc(order.as_str())
            )
        },
    )
}

/// A state as a badge: its name in text, and a class for its colour.
pub(super) fn state_badge(state: Option<State>) -> String {
    match state {
        Some(state) => format!(
            r#"<span class="badge state-{}" data-state="{}">{}</span>"#,
            state.as_str(),
            state.as_str(),
            state.as_str()
        ),
        None => r#"<span class="badge state-none" data-state="">unknown</span>"#.to_owned(),
    }
}

/// Why an order is suspect, as flags: each reason's name, with its description as a tooltip.
pub(super) fn reason_flags(reasons: Reasons) -> String {
    reasons
        .iter()
        .map(|reason: Reason| {
            format!(
                r#"<span class="flag suspect" data-reason="{name}" title="{title}">{name}</span>"#,
                name = reason.as_str(),
                title = esc(reason.describe()),
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An instant as a `<time>` element, in UTC to the second.
pub(super) fn time(at: DateTime<Utc>) -> String {
    format!(
        r#"<time datetime="{}">{}</time>"#,
        at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        at.format("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// A duration for people: the two largest units.
pub(super) fn duration(span: chrono::TimeDelta) -> String {
    let millis = span.num_milliseconds();
    let sign = if millis < 0 { "−" } else { "" };
    let millis = millis.unsigned_abs();
    let text = if millis < 1_000 {
        format!("{millis} ms")
    } else if millis < 60_000 {
        format!("{:.1} s", millis as f64 / 1_000.0)
    } else if millis < 3_600_000 {
        format!("{} min {} s", millis / 60_000, millis % 60_000 / 1_000)
    } else if millis < 86_400_000 {
        format!(
            "{} h {} min",
            millis / 3_600_000,
            millis % 3_600_000 / 60_000
        )
    } else {
        format!(
            "{} d {} h",
            millis / 86_400_000,
            millis % 86_400_000 / 3_600_000
        )
    };
    format!("{sign}{text}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn escaping_covers_markup_and_both_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        let span = chrono::TimeDelta::milliseconds;
        assert_eq!(duration(span(250)), "250 ms");
        assert_eq!(duration(span(2_500)), "2.5 s");
        assert_eq!(duration(span(125_000)), "2 min 5 s");
        assert_eq!(duration(span(3_723_000)), "1 h 2 min");
        assert_eq!(duration(span(90_000_000)), "1 d 1 h");
        assert_eq!(duration(span(-1_500)), "−1.5 s");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn a_select_marks_the_chosen_option_and_offers_any_first() {
        assert_eq!(
            select_options("any state", ["held", "failed"], Some("failed")),
            r#"<option value="">any state</option><option value="held">held</option><option value="failed" selected>failed</option>"#
        );
        assert!(!select_options("any", ["held"], None).contains("selected"));
    }

    #[test]
    fn an_order_link_encodes_its_path_and_escapes_its_text() {
        let order: OrderId = "a/b<c>".parse().unwrap();
        assert_eq!(
            order_link(Some(&order)),
            r#"<a href="/console/orders/a%2Fb%3Cc%3E">a/b&lt;c&gt;</a>"#
        );
        assert_eq!(order_link(None), "—");
    }
}
