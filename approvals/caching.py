"""Values read often and changed rarely (role ids, webhook subscriptions, a permission's id),
kept per process so that a transition does not read them again.

A `ProcessCache` is emptied at once when one of its models is saved or deleted in this process
(Django's signals) and, because another process's edit sends no signal here, after `seconds`
at the latest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

V = TypeVar("V")

_caches: list[ProcessCache[Any]] = []


def forget_all() -> None:
    """Empty every cache (tests, whose rolled-back rows send no signal)."""
    for cache in _caches:
        cache.forget()


class ProcessCache(Generic[V]):
    def __init__(
        self,
        load: Callable[[], V],
        *,
        models: Iterable[type[Model] | str],
        seconds: float = 60.0,
        m2m: Iterable[Any] = (),
    ) -> None:
        self._load = load
        self._seconds = seconds
        self._value: V | None = None
        self._loaded_at = 0.0
        for model in models:
            post_save.connect(self.forget, sender=model, weak=False)
            post_delete.connect(self.forget, sender=model, weak=False)
        for through in m2m:
            m2m_changed.connect(self.forget, sender=through, weak=False)
        _caches.append(self)

    def get(self) -> V:
        if self._value is None or time.monotonic() - self._loaded_at > self._seconds:
            self._value = self._load()
            self._loaded_at = time.monotonic()
        return self._value

    def forget(self, **_: Any) -> None:
        self._value = None
