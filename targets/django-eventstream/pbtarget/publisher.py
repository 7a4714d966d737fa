"""Publishes pushbench's schedule through django-eventstream's `send_event`.

This reproduces `protocol::Schedule` (protocol/src/schedule.rs) exactly, so the
harness can verify what arrives with the same code it uses for push-server:
global sequence number `g = 0, 1, 2, ...` is due at
`start + round(g * 1e6 / (rate * topics))` µs, belongs to topic `t{g % topics}`
and has id `g // topics + 1`. The event's data is pushbench's event JSON,
byte for byte what `protocol::Event::to_json` writes:
`{"id":1,"topic":"t0","emitted_at_us":...,"data":"xxx..."}`.

Open loop, no coordinated omission: every event is stamped with its
*scheduled* time; when the publisher is late (Python's start-up, a slow
`send_event`) it sends the overdue events at once, still stamped with their
due times, and never shifts the schedule.

Configured by the harness through the environment:
PUSHBENCH_START_EPOCH_US, PUSHBENCH_RATE (events/s per topic),
PUSHBENCH_TOPICS, PUSHBENCH_PAYLOAD_BYTES, PUSHBENCH_EVENT_TYPE (empty: the
default `message`). PUSHBENCH_HISTORY and PUSHBENCH_RETRY_MS are not used:
django-eventstream keeps its own history (24 h in the database) and sends no
`retry:` field.
"""

import logging
import os
import threading
import time

from django_eventstream import send_event

from pbtarget.schedule import event_json, scheduled_at_us

log = logging.getLogger("pbtarget.publisher")


def run(start_us: int, rate: float, topics: int, payload_bytes: int, event_type: str):
    """Publishes forever, on schedule (runs in a daemon thread)."""
    if rate <= 0 or topics <= 0:
        log.warning("rate %s on %s topics: nothing to publish", rate, topics)
        return
    step_us = 1e6 / (rate * topics)
    data = "x" * payload_bytes
    seq = 0
    while True:
        due_us = scheduled_at_us(start_us, step_us, seq)
        wait_s = (due_us - time.time_ns() // 1000) / 1e6
        if wait_s > 0:
            time.sleep(wait_s)
        topic = f"t{seq % topics}"
        event_id = seq // topics + 1
        try:
            send_event(
                topic, event_type, event_json(event_id, topic, due_us, data), json_encode=False
            )
        except Exception:  # noqa: BLE001 - one failed event must not stop the schedule
            log.exception("send_event failed for %s id %s", topic, event_id)
        seq += 1


def start_from_env():
    """Starts the publisher thread from the PUSHBENCH_* variables."""
    env = os.environ
    try:
        start_us = int(env["PUSHBENCH_START_EPOCH_US"])
        rate = float(env["PUSHBENCH_RATE"])
        topics = int(env["PUSHBENCH_TOPICS"])
        payload_bytes = int(env["PUSHBENCH_PAYLOAD_BYTES"])
    except (KeyError, ValueError) as e:
        raise SystemExit(f"pbtarget: PUSHBENCH_* schedule variables missing or bad: {e}") from e
    event_type = env.get("PUSHBENCH_EVENT_TYPE") or "message"
    thread = threading.Thread(
        target=run,
        args=(start_us, rate, topics, payload_bytes, event_type),
        name="pushbench-publisher",
        daemon=True,
    )
    thread.start()
