"""Reading /metrics in tests: the scrape parsed into {(name, labels): value}."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a sample not written yet (a counter nobody incremented)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples) -> dict[tuple[str, frozenset], float]:
    """What changed between two scrapes of the signoff_ metrics, leaving the buckets out."""
    return {
        key: after[key] - before.get(key, 0.0)
        for key in after
        if key[0].startswith("signoff_")
        and not key[0].endswith("_bucket")
        and not key[0].endswith("_created")
        and after[key] != before.get(key, 0.0)
    }
