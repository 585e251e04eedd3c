"""Invariants of template.yaml, checked on the template as SAM expands it (samtranslator), so the
policies and event source mappings SAM adds are checked too.

- every SQS queue that is not a DLQ has a redrive policy to a DLQ;
- each queue's visibility timeout is >= 6 x the timeout of the function it triggers;
- every SQS trigger reports batch item failures;
- no IAM policy statement has a `*` resource, and none allows `*` actions;
- the table has no secondary index, and each function may call exactly the DynamoDB actions its
  code path makes (`DYNAMODB_ACTIONS`, kept beside the key design in crates/aws/src/dynamo);
- the four functions exist and are built with rust-cargolambda on provided.al2023;
- the functions publish metrics under the namespace the alarms and the dashboard read, and these
  name only metrics the code emits (crates/app/src/metrics/emf.rs) with bounded dimensions; the
  dashboard body is valid JSON once substituted.

Prints "N passed, M failed" and exits non-zero on any failure.
"""

import json
import os
import re
import sys
from pathlib import Path

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]
results = []

# What each function's code calls (least privilege: nothing more, nothing less).
DYNAMODB_ACTIONS = {
    # CRUD, save and test (event, first attempt, disabling on 410), health reset on enable, the log, an event's
    # deliveries (BatchGetItem), replay and recover (UpdateItem), a subscription's delivery
    # statistics (Query).
    "ApiFunction": {"GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem", "Query"},
    # Keys and a duplicate's earlier event (GetItem), the plan's subscriptions (Query), the event
    # with its idempotency record, and an expired key's earlier event moved out (PutItem).
    "IngestFunction": {"GetItem", "PutItem", "Query"},
    # A claim-checked event (GetItem); a redelivered event's stored deliveries (BatchGetItem).
    "FanoutFunction": {"GetItem", "BatchGetItem"},
    # The subscription, a claim-checked event, a redelivered message's delivery (GetItem); the
    # first attempt, later attempts, operational events (PutItem); a delivery's new state, the
    # subscription's health, disabling, the batch's delivery statistics (`ADD`, one per
    # subscription and hour) (UpdateItem); an operational event's plan (Query).
    "DeliverFunction": {"GetItem", "PutItem", "UpdateItem", "Query"},
}

# The metrics the functions publish (names in crates/app/src/metrics/emf.rs) and their dimensions.
EMITTED = {"Deliveries", "AttemptLatency", "DeliveryLag", "QueueAge", "EventsAccepted",
           "SubscriptionsDisabled", "DeliveriesPaused", "DeliveriesRateLimited"}
BOUNDED_DIMENSIONS = {"function", "platform", "outcome"}


def check(name, ok, detail=""):
    results.append((name, ok, detail))


class NoManagedPolicies:
    """The template uses no managed policy names; anything asked for is an error."""

    def load(self):
        return {}


def main():
    # The translator only needs a region name to build ARNs; nothing is called.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template, errors = decode(str(ROOT / "template.yaml"))
    if errors:
        print("template does not parse:", errors)
        sys.exit(1)
    source = json.loads(json.dumps(template, default=str))
    # What `sam package` does before the transform: local code folders become S3 locations.
    packaged = json.loads(json.dumps(source))
    for r in packaged["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = "s3://bucket/key.zip"
    expanded = transform(packaged, {}, NoManagedPolicies())
    resources = expanded["Resources"]
    raw = source["Resources"]

    functions = {k: v for k, v in raw.items() if v["Type"] == "AWS::Serverless::Function"}
    for name in ["ApiFunction", "IngestFunction", "FanoutFunction", "DeliverFunction"]:
        fn = functions.get(name)
        check(f"{name} exists", fn is not None)
        if fn:
            check(f"{name} uses rust-cargolambda", fn.get("Metadata", {}).get("BuildMethod") == "rust-cargolambda")
            runtime = fn["Properties"].get("Runtime") or source["Globals"]["Function"].get("Runtime")
            check(f"{name} runs on provided.al2023", runtime == "provided.al2023")

    queues = {k: v for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue"}
    dlq_names = set()
    for name, q in queues.items():
        redrive = q["Properties"].get("RedrivePolicy")
        if redrive:
            target = redrive["deadLetterTargetArn"]
            dlq_names.add(target["Fn::GetAtt"][0] if isinstance(target, dict) else target)
    for name, q in queues.items():
        if name in dlq_names:
            continue
        check(f"{name} has a DLQ", "RedrivePolicy" in q["Properties"], json.dumps(q["Properties"]))

    # Event source mappings as SAM generated them.
    mappings = [v for v in resources.values() if v["Type"] == "AWS::Lambda::EventSourceMapping"]
    check("there are two SQS triggers", len(mappings) == 2, str(len(mappings)))
    globals_timeout = source.get("Globals", {}).get("Function", {}).get("Timeout", 3)
    for m in mappings:
        props = m["Properties"]
        fn_logical = props["FunctionName"]["Ref"]
        queue_logical = props["EventSourceArn"]["Fn::GetAtt"][0]
        check(f"{fn_logical} reports batch item failures", props.get("FunctionResponseTypes") == ["ReportBatchItemFailures"])
        timeout = raw[fn_logical]["Properties"].get("Timeout", globals_timeout)
        visibility = queues[queue_logical]["Properties"].get("VisibilityTimeout", 30)
        check(f"{queue_logical} visibility {visibility} >= 6 x {fn_logical} timeout {timeout}", visibility >= 6 * timeout)

    # Every IAM statement, including the ones SAM adds for the SQS pollers.
    statements = 0
    for name, r in resources.items():
        if r["Type"] != "AWS::IAM::Role":
            continue
        managed = r["Properties"].get("ManagedPolicyArns", [])
        for arn in managed:
            text = json.dumps(arn)
            check(f"{name} managed policy is only basic execution", "AWSLambdaBasicExecutionRole" in text, text)
        for policy in r["Properties"].get("Policies", []):
            for st in policy["PolicyDocument"]["Statement"]:
                statements += 1
                res = st.get("Resource", [])
                res = res if isinstance(res, list) else [res]
                actions = st.get("Action", [])
                actions = actions if isinstance(actions, list) else [actions]
                check(f"{name}/{policy['PolicyName']} has no '*' resource", all(x != "*" and not (isinstance(x, str) and x.endswith(":*")) for x in res), json.dumps(res))
                check(f"{name}/{policy['PolicyName']} has no '*' action", all(isinstance(a, str) and not a.endswith("*") for a in actions), json.dumps(actions))
    check("policies were found", statements > 0, str(statements))

    table = raw["Table"]["Properties"]
    check("the table has no secondary index", "GlobalSecondaryIndexes" not in table and "LocalSecondaryIndexes" not in table)
    for fn_name, wanted in DYNAMODB_ACTIONS.items():
        granted = set()
        for policy in raw[fn_name]["Properties"].get("Policies", []):
            for st in policy.get("Statement", []) if isinstance(policy, dict) else []:
                actions = st.get("Action", [])
                actions = actions if isinstance(actions, list) else [actions]
                granted |= {a.split(":", 1)[1] for a in actions if a.startswith("dynamodb:")}
        check(f"{fn_name} may call exactly {sorted(wanted)}", granted == wanted, f"granted {sorted(granted)}")

    check_metrics(source)

    failed = [r for r in results if not r[1]]
    for name, ok, detail in results:
        if not ok:
            print(f"FAIL {name}: {detail}")
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


def check_metrics(source):
    emf_rs = (ROOT / "crates/app/src/metrics/emf.rs").read_text()
    for name in sorted(EMITTED):
        check(f"metric {name} is emitted by the code", f'"{name}"' in emf_rs)
    env = source["Globals"]["Function"]["Environment"]["Variables"]
    namespace = env.get("HERALD_METRICS_NAMESPACE")
    check("the functions are given a metrics namespace", namespace is not None, json.dumps(env))

    alarms = {k: v["Properties"] for k, v in source["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    herald_alarms = 0
    for name, props in alarms.items():
        stats = [props] + [m["MetricStat"]["Metric"] for m in props.get("Metrics", []) if "MetricStat" in m]
        for stat in stats:
            if stat.get("Namespace") in ("AWS/SQS", None):
                continue
            herald_alarms += 1
            check(f"{name} reads the functions' namespace", stat["Namespace"] == namespace, json.dumps(stat["Namespace"]))
            check(f"{name} reads an emitted metric", stat["MetricName"] in EMITTED, stat["MetricName"])
            dims = {d["Name"] for d in stat.get("Dimensions", [])}
            check(f"{name} uses bounded dimensions", dims <= BOUNDED_DIMENSIONS, str(dims))
    check("alarms on the failure ratio and the lag exist", {"DeliveryFailureRatioAlarm", "DeliveryLagAlarm"} <= alarms.keys())
    check("Herald's own metrics are alarmed on", herald_alarms >= 3, str(herald_alarms))

    dashboards = [v["Properties"] for v in source["Resources"].values() if v["Type"] == "AWS::CloudWatch::Dashboard"]
    check("there is a dashboard", len(dashboards) == 1)
    for d in dashboards:
        body, names = d["DashboardBody"]["Fn::Sub"]
        # Substituted as CloudFormation would, with stand-ins for the deployed names.
        text = body.replace("${NS}", "NS")
        text = re.sub(r"\$\{[A-Za-z0-9:.]+\}", "1", text)
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as e:
            check("the dashboard body is JSON", False, str(e))
            continue
        check("the dashboard reads the functions' namespace", names.get("NS") == namespace, json.dumps(names))
        shown = set()
        for widget in parsed["widgets"]:
            for row in widget["properties"].get("metrics", []):
                if row and row[0] == "NS":
                    shown.add(row[1])
                    dims = set(row[2:-1:2] if isinstance(row[-1], dict) else row[2::2])
                    check(f"dashboard row {row[1]} uses bounded dimensions", dims <= BOUNDED_DIMENSIONS, str(dims))
        check("the dashboard shows every emitted metric", shown == EMITTED, f"missing {sorted(EMITTED - shown)}, unknown {sorted(shown - EMITTED)}")


if __name__ == "__main__":
    main()
