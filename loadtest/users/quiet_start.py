"""Pay the process's one-off costs before the load starts, not while streams are in flight.

Two costs, each a stall of every greenlet (so of every socket read) when paid mid-run:

- **The garbage collector's first full passes.** Everything allocated at start-up (Locust,
  pandas, our modules: ~10^6 objects) is re-scanned by each full collection, ~60 ms a time
  (measured), unless it is frozen out of the collector's reach first.
- **Locust's** ``Runner.stop()``, which logs its caller through ``inspect.stack()``. The first
  such call maps every loaded module to its file (``inspect.getmodule``: one ``realpath``
  per module, ~1,200 modules): 50-60 ms with the loop blocked, measured here at the end of
  every run as a 50 ms gap in each stream still in flight, and once as a 55 ms loop-lag tick
  that flagged a healthy run's last window as saturated. Once mapped, a later call only maps
  the modules imported since (~1 ms).
"""

from __future__ import annotations

import gc
import inspect


def settle_before_load() -> None:
    """Collect and freeze the start-up heap, and warm ``inspect``'s module map.

    Call once, after start-up and before the first user starts; calling again is harmless.
    """
    gc.collect()
    gc.freeze()
    # freeze() leaves the collector's count of long-lived objects at the size of the heap
    # just frozen, so the oldest generation would next be collected only after a quarter of
    # that had been promoted (minutes, during which dead cycles pile up). One more
    # collection now, of the few unfrozen objects, resets the count.
    gc.collect()
    inspect.stack()  # as Locust calls it
