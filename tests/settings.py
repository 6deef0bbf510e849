"""Settings for the test suite: the real settings, in development mode, with a fast hasher.

DATABASE_URL still chooses the database, so the same suite runs on PostgreSQL and on SQLite.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("DEBUG", "true")
# One audit key for the suite and the processes it starts on its database (they inherit it).
os.environ.setdefault("AUDIT_CHAIN_KEY", "test-audit-chain-key-0123456789abcdef")

# Each test process counts its Prometheus samples in a folder of its own, so that a test
# comparing scrapes sees only what it did (the processes a test starts get their own too).
_METRICS_DIR = tempfile.mkdtemp(prefix="signoff-test-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _METRICS_DIR
atexit.register(shutil.rmtree, _METRICS_DIR, ignore_errors=True)

from workflow_app.settings import *  # noqa: E402, F403

# Hashing with the production hasher would dominate the run time of tests that create users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# WhiteNoise warns at every request when STATIC_ROOT is missing, which it is until collectstatic.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405

# In-process tests run with production's outgoing-URL policy; those whose receivers listen on
# 127.0.0.1 allow private targets themselves.
ALLOW_PRIVATE_WEBHOOK_TARGETS = False
