"""Regenerates events/: real Lambda event shapes from `sam local generate-event`, adapted to Herald's
routes and messages. Run with the venv's python after `scripts/test.sh` installed SAM:

    .venv/bin/python scripts/gen-events.py

Generated API Gateway events carry a base64 body and no content-type, so the header is added here.
The API key in the fixtures is a fixed test key; tests register it before invoking.
"""

import base64
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
FIXTURE_KEY = "hk_fixture_key_for_local_invocations_only_0000"
TENANT = "ten_01JDXF0000000000000000TEST"
EVENT_ID = "evt_01JDXF0000000000000000EVT1"
DELIVERY_ID = "del_01JDXF0000000000000000DE01"
SUBSCRIPTION_ID = "sub_01JDXF0000000000000000SB01"
AT = "2026-12-01T00:00:00Z"
# A first-attempt message as fan-out sends it: the delivery as it stands and the (small) event.
DELIVERY_MESSAGE = {
    "kind": "delivery",
    "delivery": {
        "id": DELIVERY_ID, "tenant_id": TENANT, "subscription_id": SUBSCRIPTION_ID, "event_id": EVENT_ID,
        "event_type": "document.created", "status": "pending", "attempts": 0, "run_started_at": 0,
        "last_status_code": None, "last_error": None, "next_attempt_at": AT, "created_at": AT, "updated_at": AT,
    },
    "attempt": 1,
    "event": {
        "id": EVENT_ID, "tenant_id": TENANT, "type": "document.created", "timestamp": AT,
        "data": {"title": "Fixture"}, "subscriptions": [SUBSCRIPTION_ID],
    },
}


def sam(*args):
    out = subprocess.run(["sam", "local", "generate-event", *args], check=True, capture_output=True, text=True,
                         env={"SAM_CLI_TELEMETRY": "0", "PATH": str(ROOT / ".venv" / "bin") + ":" + os.environ.get("PATH", "/usr/bin:/bin")})
    return json.loads(out.stdout)


def http_event(name, method, path, body=None, auth=True, query=""):
    event = sam("apigateway", "http-api-proxy", "--method", method, "--path", path.lstrip("/"),
                "--body", json.dumps(body) if body is not None else "")
    event["rawPath"] = path
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["sourceIp"] = "127.0.0.1"
    event["routeKey"] = "$default"
    event["rawQueryString"] = query
    event.pop("queryStringParameters", None)
    event.pop("pathParameters", None)
    event.pop("cookies", None)
    event.pop("stageVariables", None)
    event["requestContext"].pop("authorizer", None)
    event["requestContext"].pop("authentication", None)
    headers = {"user-agent": "herald-fixture"}
    if auth:
        headers["authorization"] = f"Bearer {FIXTURE_KEY}"
    if body is not None:
        headers["content-type"] = "application/json"
        event["body"] = base64.b64encode(json.dumps(body).encode()).decode()
        event["isBase64Encoded"] = True
    else:
        event.pop("body", None)
        event["isBase64Encoded"] = False
    event["headers"] = headers
    write(name, event)


def sqs_event(name, bodies, queue):
    template = sam("sqs", "receive-message")["Records"][0]
    records = []
    for i, body in enumerate(bodies):
        record = json.loads(json.dumps(template))
        record["messageId"] = f"00000000-0000-4000-8000-{i:012d}"
        record["receiptHandle"] = f"fixture-receipt-{i}"
        record["body"] = body if isinstance(body, str) else json.dumps(body)
        record["eventSourceARN"] = f"arn:aws:sqs:us-east-1:123456789012:{queue}"
        record.pop("md5OfBody", None)
        records.append(record)
    write(name, {"Records": records})


def write(name, event):
    (EVENTS / name).write_text(json.dumps(event, indent=2) + "\n")
    print("wrote", name)


def main():
    EVENTS.mkdir(exist_ok=True)
    http_event("api-healthz.json", "GET", "/healthz", auth=False)
    http_event("api-event-types.json", "GET", "/v1/event-types")
    http_event("api-list-subscriptions.json", "GET", "/v1/subscriptions", query="limit=10")
    http_event("api-create-subscription.json", "POST", "/v1/subscriptions", body={
        "name": "Docs to Slack", "platform": "slack", "url": "https://hooks.slack.com/services/T000/B000/XXXX",
        "events": ["document.created", "article.*"]})
    http_event("ingest-event.json", "POST", "/v1/events", body={
        "type": "document.created", "data": {"title": "Getting started", "author": "Ada",
                                              "url": "https://docs.example.com/getting-started"}})
    sqs_event("sqs-fanout.json", [{"kind": "event", "tenant_id": TENANT, "event_id": EVENT_ID}], "herald-dev-events")
    # A batch for the fanout function: three events, an unreadable body and a delivery message
    # (the other queue's kind).
    sqs_event("sqs-fanout-batch.json", [
        {"kind": "event", "tenant_id": TENANT, "event_id": EVENT_ID},
        {"kind": "event", "tenant_id": TENANT, "event_id": EVENT_ID[:-1] + "2"},
        "this is not a Herald message",
        {"kind": "event", "tenant_id": TENANT, "event_id": EVENT_ID[:-1] + "3"},
        DELIVERY_MESSAGE,
    ], "herald-dev-events")
    sqs_event("sqs-deliver.json", [DELIVERY_MESSAGE], "herald-dev-deliveries")
    sqs_event("sqs-deliver-mixed.json", [
        DELIVERY_MESSAGE,
        "this is not a Herald message",
        {"kind": "event", "tenant_id": TENANT, "event_id": EVENT_ID},
    ], "herald-dev-deliveries")


if __name__ == "__main__":
    main()
