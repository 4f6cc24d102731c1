#!/usr/bin/env python3
"""An analytics consumer that uses none of FlowFuse's code: confluent-kafka from PyPI reads a
FlowFuse topic and prints each record's CloudEvents attributes and data as one JSON line.

    python3 -m pip install confluent-kafka
    python3 scripts/analytics_consumer.py --brokers 127.0.0.1:9092 --topic flowfuse.workflow

CloudEvents binary mode (Kafka protocol binding 1.0): the value is the event data (JSON), every
attribute is a header named ce_<attribute>, and the key is the stream id.
"""

import argparse
import json
import sys
import time
import uuid

from confluent_kafka import Consumer


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brokers", default="127.0.0.1:9092")
    parser.add_argument("--topic", default="flowfuse.workflow")
    parser.add_argument("--group", default=f"analytics-{uuid.uuid4()}")
    parser.add_argument("--max-records", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument("--timeout", type=float, default=0, help="stop after this many idle seconds (0: never)")
    args = parser.parse_args()

    consumer = Consumer({
        "bootstrap.servers": args.brokers,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
    })
    consumer.subscribe([args.topic])
    seen, last = 0, time.monotonic()
    try:
        while not args.max_records or seen < args.max_records:
            message = consumer.poll(0.5)
            if message is None:
                if args.timeout and time.monotonic() - last > args.timeout:
                    break
                continue
            if message.error():
                print(f"error: {message.error()}", file=sys.stderr)
                continue
            last = time.monotonic()
            headers = {key: value.decode() for key, value in (message.headers() or [])}
            attributes = {key[3:]: value for key, value in headers.items() if key.startswith("ce_")}
            print(json.dumps({
                "key": message.key().decode() if message.key() else None,
                "partition": message.partition(),
                "offset": message.offset(),
                "attributes": attributes,
                "content_type": headers.get("content-type"),
                "traceparent": headers.get("traceparent"),
                "data": json.loads(message.value()),
            }), flush=True)
            seen += 1
    finally:
        consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
