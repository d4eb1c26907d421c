"""Clocks for the workloads: repeats, medians and the time spent in the GC."""

import gc
import statistics
import time

__all__ = ["GCClock", "Samples", "gc_clock", "collect"]


class GCClock:
    """Adds up the wall time spent inside cyclic-GC collections.

    Installed once per process through ``gc.callbacks``; ``total`` only grows,
    so a caller takes the difference around the code it measures.
    """

    def __init__(self):
        self.total = 0.0
        self.collections = 0
        self._start = None
        gc.callbacks.append(self._callback)

    def _callback(self, phase, info):
        if phase == "start":
            self._start = time.perf_counter()
        elif self._start is not None:
            self.total += time.perf_counter() - self._start
            self.collections += 1
            self._start = None


_clock = None


def gc_clock():
    """The process-wide GCClock (created on first use)."""
    global _clock
    if _clock is None:
        _clock = GCClock()
    return _clock


class Samples:
    """Timings of repeated runs: ``time(fn)`` runs ``fn`` once under the clock.

    Each sample keeps the elapsed wall time and the part of it spent in GC
    collections.  ``summary()`` gives the record fields.
    """

    def __init__(self):
        self.times = []
        self.gc_times = []
        self.clock = gc_clock()

    def time(self, fn, *args, per=1):
        """Run ``fn(*args)`` once; the sample is its time divided by ``per``
        (``fn`` does ``per`` units of work, e.g. steps)."""
        gc0 = self.clock.total
        t0 = time.perf_counter()
        result = fn(*args)
        elapsed = time.perf_counter() - t0
        self.add(elapsed / per, (self.clock.total - gc0) / per)
        return result

    def add(self, elapsed, gc_elapsed=0.0):
        self.times.append(elapsed)
        self.gc_times.append(gc_elapsed)

    @property
    def median(self):
        return statistics.median(self.times)

    def summary(self):
        return {
            "median_s": statistics.median(self.times),
            "min_s": min(self.times),
            "max_s": max(self.times),
            "repeats": len(self.times),
            "gc_s": statistics.median(self.gc_times),
        }


def collect():
    """Collect garbage twice (what the first collection's finalizers freed
    goes too), outside any clock."""
    gc.collect()
    gc.collect()
