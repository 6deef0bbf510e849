"""The one sweep of what leaves after commit: every registered `RetryQueue`'s due rows (retries
whose backoff ran out, attempts whose worker died, rows written while the broker was down)
are sent again. Beat runs it every OUTBOX_SWEEP_SECONDS; sweeps running at once are safe."""

from __future__ import annotations

import logging
from datetime import datetime

from approvals.outbox import retry
from approvals.outbox.dispatch import queue

logger = logging.getLogger(__name__)


def outbox_sweep(*, now: datetime, limit: int = 200) -> dict[str, int]:
    """Send what is due in each queue; returns how many rows each sent, by queue name."""
    sent: dict[str, int] = {}
    for retry_queue in retry.queues():
        handed_out = retry_queue.due(now=now, limit=limit)
        sent[retry_queue.name] = queue(retry_queue.task, retry_queue.calls(handed_out))
    if any(sent.values()):
        logger.info("outbox sweep at %s sent %s", now.isoformat(), sent)
    return sent
