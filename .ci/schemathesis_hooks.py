"""Schemathesis hooks for order-listener's contract run (.ci/schemathesis).

A seller sends a fresh eventId for every new notification; the listener refuses a known eventId
with another payload (422, code 60) by design. Schemathesis reuses short ids such as "0" across
cases, so each well-formed eventId gets a unique suffix just before the call (schemathesis
revalidates the case after this hook). An eventId that breaks the schema (too
long, empty, control characters, not a string) is left as it is, so negative cases stay negative.
"""

import itertools
import re
import uuid

import schemathesis

_COUNTER = itertools.count()
MAX_ID = 256  # characters, as the documents say
_RUN = uuid.uuid4().hex[:8]
_CONTROL = re.compile("[\u0000-\u001f\u007f-\u009f]")


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if isinstance(body, dict):
        event_id = body.get("eventId")
        if isinstance(event_id, str) and 1 <= len(event_id) <= MAX_ID and not _CONTROL.search(event_id):
            suffix = f"~{_RUN}-{next(_COUNTER)}"
            # Stay within the schema's maxLength: a long id keeps its length, its tail replaced.
            body["eventId"] = (event_id + suffix)[: MAX_ID - len(suffix)] + suffix if len(event_id) + len(suffix) > MAX_ID else event_id + suffix
