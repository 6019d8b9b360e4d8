"""Schemathesis hooks for order-listener's contract run (.ci/schemathesis).

A seller sends a fresh eventId for every new notification; the listener refuses a known eventId
with another payload (422, code 60) by design. Schemathesis reuses short ids such as "0" across
cases, so each well-formed eventId gets a unique suffix just before the call (schemathesis
revalidates the case after this hook). An eventId that breaks the schema (too
long, empty, control characters, not a string) is left as it is, so negative cases stay negative.

`GET /api/v1/received` and `GET /api/v1/events` refuse an `until` that is not after `since` (400,
code 28): a rule
between two parameters, which the document states in words but JSON Schema cannot. A case whose
`since` and `until` both read as dates in that order loses its `until` (the range then ends
now), so that a refusal the rule calls for is not counted against a well-formed request.
"""

import itertools
import re
import uuid
from datetime import datetime

import schemathesis

_COUNTER = itertools.count()
MAX_ID = 256  # characters, as the documents say
_RUN = uuid.uuid4().hex[:8]
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")


@schemathesis.hook
def before_call(context, case, kwargs):
    _end_the_received_range_after_its_start(case)
    body = case.body
    if isinstance(body, dict):
        event_id = body.get("eventId")
        if isinstance(event_id, str) and 1 <= len(event_id) <= MAX_ID and not _CONTROL.search(event_id):
            suffix = f"~{_RUN}-{next(_COUNTER)}"
            # Stay within the schema's maxLength: a long id keeps its length, its tail replaced.
            body["eventId"] = (event_id + suffix)[: MAX_ID - len(suffix)] + suffix if len(event_id) + len(suffix) > MAX_ID else event_id + suffix


def _end_the_received_range_after_its_start(case):
    query = case.query
    if case.operation.path not in ("/api/v1/received", "/api/v1/events") or not isinstance(query, dict):
        return
    since, until = query.get("since"), query.get("until")
    if not (isinstance(since, str) and isinstance(until, str)):
        return
    try:
        in_order = datetime.fromisoformat(until) > datetime.fromisoformat(since)
    except (ValueError, TypeError):
        # Not two comparable dates: a case about something else, left as it is.
        return
    if not in_order:
        del query["until"]
