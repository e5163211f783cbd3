"""Send alerts to every channel at once, within a bounded time, never raising.

Each channel gets its own daemon thread and sends its messages in order; the caller waits at
most ``max_seconds`` for all of them together. A message not delivered by then (a channel that
refuses, answers 500 or never answers) comes back as a failed :class:`Delivery` for the caller
to log and retry; a thread still stuck in a socket call is left to its own timeout and its
late result ignored.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from budget_pipeline.alerts.channels import Channel, DeliveryError
from budget_pipeline.alerts.messages import Alert


@dataclass(frozen=True)
class Delivery:
    channel: str
    alert: Alert
    error: str | None  # None: delivered
    seconds: float

    @property
    def ok(self) -> bool:
        return self.error is None


def deliver(
    work: Sequence[tuple[Channel, Sequence[Alert]]], *, max_seconds: float
) -> list[Delivery]:
    """Send each channel its alerts; one :class:`Delivery` per (channel, alert), in order."""
    lock = threading.Lock()
    stopped = threading.Event()
    done: dict[int, list[Delivery]] = {i: [] for i in range(len(work))}

    def run(i: int, channel: Channel, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            if stopped.is_set():
                return
            start = time.monotonic()
            try:
                channel.send(alert)
                error = None
            except DeliveryError as exc:
                error = str(exc)
            except Exception as exc:  # a bug in a channel must not reach the sensor either
                error = f"{type(exc).__name__}: {exc}"
            with lock:
                if stopped.is_set():
                    return  # too late: reported as not sent
                done[i].append(Delivery(channel.name, alert, error, time.monotonic() - start))

    started = time.monotonic()
    threads = [
        threading.Thread(target=run, args=(i, ch, alerts), name=f"alert-{ch.name}", daemon=True)
        for i, (ch, alerts) in enumerate(work)
        if alerts
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, started + max_seconds - time.monotonic()))
    with lock:
        stopped.set()
        out: list[Delivery] = []
        for i, (channel, alerts) in enumerate(work):
            out += done[i]
            elapsed = time.monotonic() - started
            out += [
                Delivery(
                    channel.name,
                    alert,
                    f"not sent: the tick's {max_seconds:g} s for sending ran out",
                    elapsed,
                )
                for alert in alerts[len(done[i]) :]
            ]
    return out
