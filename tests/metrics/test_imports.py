"""Analysis code may import every metrics module without loading Locust, gevent or pandas."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_metrics_package_loads_no_locust_gevent_or_pandas() -> None:
    # A fresh interpreter: this test process is gevent-patched by conftest.
    probe = (
        "import sys\n"
        "import loadtest.metrics.catalog, loadtest.metrics.generator_health\n"
        "import loadtest.metrics.interval_log, loadtest.metrics.stream_rows\n"
        "print(sorted(m for m in ('locust', 'gevent', 'pandas') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=30
    )

    assert result.stdout.strip() == "[]"
