"""Contract check of GET /api/v1/stream, which schemathesis cannot test (the answer never ends).

Reads the stream from the start (`since=0`) until `count` messages have arrived, and checks each
against the admin document: `id` matches the documented pattern of `since`, `event` is the
eventType, and `data` is one line of JSON valid against the schema the 200 answer names under
`x-data-schema` (StoredEvent). Usage: check_stream.py ADMIN_URL TOKEN COUNT
"""

import copy
import json
import re
import sys

import jsonschema
import requests


def to_json_schema(node):
    """OpenAPI 3.0 `nullable` as JSON Schema: the value may also be null."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    for key in ("example", "x-data-schema"):
        node.pop(key, None)
    return node


def main():
    base, token, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    headers = {"Authorization": f"Bearer {token}"}
    document = requests.get(f"{base}/api/v1/openapi.json", timeout=10).json()
    operation = document["paths"]["/api/v1/stream"]["get"]
    media = operation["responses"]["200"]["content"]["text/event-stream"]
    pattern = re.compile(
        next(p for p in operation["parameters"] if p["name"] == "since")["schema"]["pattern"]
    )
    schema = {"$ref": media["x-data-schema"]["$ref"], "components": to_json_schema(document["components"])}
    validator = jsonschema.Draft7Validator(schema)

    seen = 0
    message = {}
    with requests.get(f"{base}/api/v1/stream", params={"since": "0"}, headers=headers, stream=True, timeout=30) as answer:
        assert answer.status_code == 200, answer.status_code
        assert answer.headers["content-type"].startswith("text/event-stream"), answer.headers
        for line in answer.iter_lines(decode_unicode=True):
            if line.startswith(":"):
                continue
            if line:
                field, _, value = line.partition(":")
                message[field] = value[1:] if value.startswith(" ") else value
                continue
            if not message:
                continue
            assert pattern.fullmatch(message["id"]), f"id {message['id']!r} does not match {pattern.pattern}"
            data = json.loads(message["data"])
            errors = sorted(validator.iter_errors(data), key=str)
            assert not errors, f"message {message['id']}: {errors[0]}"
            assert message["event"] == data["eventType"], message
            seen += 1
            message = {}
            if seen == count:
                break
    assert seen == count, f"the stream ended after {seen} of {count} messages"
    print(f"stream: {seen} messages match the admin document")


if __name__ == "__main__":
    main()
