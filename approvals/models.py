from __future__ import annotations

from django.db import models


class Heartbeat(models.Model):
    """Last time a background process proved it runs (the worker executing a beat task)."""

    source = models.CharField(max_length=50, primary_key=True)
    seen_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.source} @ {self.seen_at:%Y-%m-%d %H:%M:%S}"
