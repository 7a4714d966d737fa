"""pushbench's schedule and event JSON, in Python (no Django: testable alone).

`harness/tests/targets.rs` checks both against the Rust originals
(`protocol::Schedule::slot`, `protocol::encode::event_json`).
"""

import math


def slot(start_us: int, rate: float, topics: int, seq: int):
    """`Schedule::slot(seq)`: (topic index, id, scheduled time in µs)."""
    step_us = 1e6 / (rate * topics)
    return seq % topics, seq // topics + 1, scheduled_at_us(start_us, step_us, seq)


def scheduled_at_us(start_us: int, step_us: float, seq: int) -> int:
    """`Schedule::slot(seq).at_us`: `(seq as f64 * step_us).round()`.

    Rust's `round` goes half away from zero; Python's `round` goes half to
    even and `floor(x + 0.5)` can round up in the addition, so it is done by
    hand (`x - floor(x)` is exact for a non-negative float).
    """
    x = seq * step_us
    whole = math.floor(x)
    return start_us + (whole + 1 if x - whole >= 0.5 else whole)


def event_json(event_id: int, topic: str, emitted_at_us: int, data: str) -> str:
    """`protocol::Event::to_json`: compact, fields in declaration order.

    `data` is ASCII `x` filler and topics are `tN`, so nothing needs escaping.
    """
    return (
        f'{{"id":{event_id},"topic":"{topic}",'
        f'"emitted_at_us":{emitted_at_us},"data":"{data}"}}'
    )
