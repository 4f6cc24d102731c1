#!/usr/bin/env python3
"""Independent hash-chain check for auditors: uses only the Python standard library and none
of FlowFuse's code.

    flowfuse events read workflow-0190... | python3 scripts/audit_verify.py

Reads NDJSON envelopes on stdin (one stream's, or several streams' in version order), and for each
event recomputes

    hash = hex(SHA-256(prev_hash || JCS(envelope without global_position, prev_hash, hash)))

where JCS is the RFC 8785 JSON Canonicalization Scheme and prev_hash of version 1 is 64 zeros.
Exits 0 when every chain holds, 1 naming the first broken stream and version.
"""

import hashlib
import json
import math
import sys
from decimal import Decimal

GENESIS = "0" * 64
NOT_HASHED = ("global_position", "prev_hash", "hash")


def jcs_number(x):
    """ECMAScript Number.prototype.toString, as RFC 8785 requires."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError("JSON numbers are finite")
    if x == 0:
        return "0"
    if x < 0:
        return "-" + jcs_number(-x)
    # repr() gives the shortest digits that round-trip, as ECMAScript does.
    _, raw_digits, exponent = Decimal(repr(x)).as_tuple()
    n = exponent + len(raw_digits)  # x = 0.DIGITS * 10^n
    digits = "".join(map(str, raw_digits)).rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    mantissa = digits if k == 1 else digits[0] + "." + digits[1:]
    return mantissa + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def jcs(value):
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return jcs_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + jcs(value[k]) for k in keys) + "}"
    raise TypeError(f"not JSON: {value!r}")


def main():
    heads = {}  # stream_id -> (next version, prev hash)
    checked = 0
    for line_number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        event = json.loads(line)
        stream = event["stream_id"]
        version, prev = heads.get(stream, (event["version"], None))
        if prev is None and event["version"] == 1:
            prev = GENESIS
        problem = None
        if event["version"] != version:
            problem = f"expected version {version}"
        elif prev is not None and event["prev_hash"] != prev:
            problem = "prev_hash does not match the previous event's hash"
        else:
            body = {k: v for k, v in event.items() if k not in NOT_HASHED}
            canonical = jcs(body).encode("utf-8")
            recomputed = hashlib.sha256(event["prev_hash"].encode("ascii") + canonical).hexdigest()
            if recomputed != event["hash"]:
                problem = f"content does not match its hash (recomputed {recomputed})"
        if problem:
            print(f"BROKEN {stream} at version {event['version']} (line {line_number}): {problem}")
            return 1
        heads[stream] = (version + 1, event["hash"])
        checked += 1
    print(f"OK: {len(heads)} streams, {checked} events, every hash chain intact")
    return 0


if __name__ == "__main__":
    sys.exit(main())
