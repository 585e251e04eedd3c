"""Checks the CloudWatch Embedded Metric Format lines a function printed.

Usage: check_emf.py LOG [METRIC[:DIM=VALUE,...] ...]

Every line of LOG that is a JSON object with an `_aws` member must be a valid EMF document: the
schema beside this file (from CloudWatch's specification) and the rules that tie a directive to
the root (every dimension present as a non-empty string of at most 1024 characters; every metric
present as a number or an array of at most 100 numbers). Dimensions must stay bounded: no tenant
or subscription id among them. Each METRIC argument must appear on some line (with those dimension
values). Prints one line per problem; exits 1 on any.
"""
import json
import pathlib
import sys

import jsonschema

SCHEMA = json.loads((pathlib.Path(__file__).parent / "emf.schema.json").read_text())
BOUNDED = {"function", "platform", "outcome"}


def problems_of(doc):
    try:
        jsonschema.validate(doc, SCHEMA)
    except jsonschema.ValidationError as e:
        yield f"schema: {e.message} at {list(e.absolute_path)}"
        return
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for dims in directive["Dimensions"]:
            for key in dims:
                value = doc.get(key)
                if not isinstance(value, str) or not 0 < len(value) <= 1024:
                    yield f"dimension {key!r} is {value!r}"
                if key not in BOUNDED:
                    yield f"dimension {key!r} is not one of the bounded {sorted(BOUNDED)}"
        for metric in directive["Metrics"]:
            value = doc.get(metric["Name"])
            numbers = value if isinstance(value, list) else [value]
            if (
                isinstance(value, bool)
                or not numbers
                or len(numbers) > 100
                or not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers)
            ):
                yield f"metric {metric['Name']!r} is {value!r}"


def main():
    log, wanted = sys.argv[1], sys.argv[2:]
    docs, problems = [], []
    for n, line in enumerate(pathlib.Path(log).read_text(errors="replace").splitlines(), 1):
        start = line.find("{")
        if start < 0 or '"_aws"' not in line:
            continue
        try:
            doc = json.loads(line[start:])
        except json.JSONDecodeError as e:
            problems.append(f"line {n}: not JSON: {e}")
            continue
        if line[:start].strip():
            problems.append(f"line {n}: text before the JSON object: {line[:start]!r}")
        if not isinstance(doc, dict) or "_aws" not in doc:
            continue
        docs.append(doc)
        problems += [f"line {n}: {p}" for p in problems_of(doc)]
    for want in wanted:
        name, _, dims = want.partition(":")
        pairs = [d.split("=", 1) for d in dims.split(",") if d]
        if not any(name in d and all(d.get(k) == v for k, v in pairs) for d in docs):
            problems.append(f"no line has {want}")
    for p in problems:
        print(p)
    print(f"{len(docs)} EMF lines, {len(problems)} problems")
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
