"""Documents of a request: media types sniffed from the bytes, the storage keys,
the definition's `meta.artifacts` rules and the download views. Writes are in
approvals/services/artifacts.py."""
