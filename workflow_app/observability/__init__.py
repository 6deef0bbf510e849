"""What operators watch: Prometheus metrics (`metrics.py`), structured logs, traces."""
