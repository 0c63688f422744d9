"""Reading a /metrics answer in tests, with prometheus_client's own parser (so the format is checked too)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


class Scrape:
    """Samples by name and labels: `scrape["mist_http_requests_total", {"route": "/healthz"}]` sums the matches."""

    def __init__(self, text: str) -> None:
        self.samples = [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text)
                        for s in family.samples]

    def __getitem__(self, key: str | tuple[str, dict[str, str]]) -> float:
        name, labels = (key, {}) if isinstance(key, str) else key
        found = [v for n, l, v in self.samples if n == name and all(l.get(k) == w for k, w in labels.items())]
        if not found:
            raise KeyError(f"no sample {name} {labels} in the scrape")
        return sum(found)

    def get(self, name: str, labels: dict[str, str] | None = None, default: float = 0.0) -> float:
        """As [] but `default` where no sample matches (a labelled counter appears only once it moved)."""
        try:
            return self[name, labels or {}]
        except KeyError:
            return default

    def has(self, name: str) -> bool:
        return any(n == name for n, _, _ in self.samples)
