"""Load shapes for the scenario library: how many users, when.

Pure functions say how many users a shape wants at a moment; thin ``LoadTestShape`` classes
hand that to Locust (``use_common_options``: ``-u``, ``-r`` and ``-t`` keep their meaning).
"""

from __future__ import annotations

from locust import LoadTestShape


def spike_users(elapsed_s: float, base: int, spike: int, at_s: float, duration_s: float) -> int:
    """Users wanted ``elapsed_s`` into a spike run: ``base``, then ``spike`` for a while."""
    return spike if at_s <= elapsed_s < at_s + duration_s else base


class SpikeShape(LoadTestShape):
    """Steady at ``-u``; at ``--spike-at`` s, ``--spike-users`` for ``--spike-duration`` s
    (spawned as fast as ``-r`` allows, so the burst is real); then back to ``-u`` until ``-t``.
    """

    use_common_options = True
    abstract = True

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options if self.runner else None
        if options is None:
            return None
        elapsed = self.get_run_time()
        if options.run_time and elapsed >= options.run_time:  # Locust leaves -t to the shape
            return None
        base = int(options.num_users or 1)
        spike = int(options.spike_users or 3 * base)
        users = spike_users(elapsed, base, spike, options.spike_at, options.spike_duration)
        rate = float(options.spawn_rate or users)
        return users, max(rate, float(spike))  # the burst arrives at once, as a spike does
