"""Documents of a request (issue 12): media types sniffed from the bytes, the storage keys,
the definition's `meta.artifacts` rules and the download views. Writes are in
approvals/services/artifacts.py."""
