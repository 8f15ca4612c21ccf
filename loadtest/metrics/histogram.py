"""One latency distribution: exact to 3 significant digits, mergeable, never lossy at the edges.

A :class:`LatencyHistogram` wraps an HdrHistogram that counts integer **microseconds** from
1 µs to 1 hour at 3 significant digits (worst quantisation error 0.1 %; ~0.22 % measured on
p50–p99.99). Recording only keeps the value (well under 1 µs, so it sits on the hot path);
kept values are counted together, vectorised, when the histogram is next read or once
:data:`SETTLE_EVERY` are waiting, and percentiles are read only when summarising.

Why a wrapper rather than the bare ``hdrh`` object:

- ``HdrHistogram.record_value`` silently returns ``False`` for a value outside its range. A load
  test that drops its slowest samples reports a flattering tail, so values above 1 hour are
  recorded *clamped* to 1 hour and counted in :attr:`LatencyHistogram.out_of_range`; negative
  values (a clock bug, never a real duration) are recorded as 1 µs and counted there too.
- ``HdrHistogram.add`` corrupts the minimum when either side is empty (it takes
  ``get_min_value()``, which is 0 for an empty histogram). :meth:`LatencyHistogram.merge`
  keeps the true minimum.
- The out-of-range count must survive the trip from a Locust worker to the master, so
  :meth:`LatencyHistogram.encode` prefixes the standard HdrHistogram blob with it.
- ``get_mean_value`` walks every bucket through a Python iterator (~70 ms on a busy histogram)
  and every percentile scans all 23,552 counters in Python; :meth:`LatencyHistogram.summary_ms`
  does the same arithmetic vectorised with numpy (~1 ms), so per-window summaries of a long
  soak stay cheap. Results are identical to the package's methods (the tests check it).

Percentile definition (HdrHistogram's): the target rank is
``max(1, int(p / 100 * count + 0.5))``; the value reported is the *highest value equivalent*
to the bucket holding that rank (so it may exceed the true sample by at most the bucket width,
0.1 %). ``min`` is the lowest equivalent value of the smallest sample, ``max`` the highest
equivalent value of the largest, ``mean`` the count-weighted mean of bucket midpoints.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import operator
import weakref
import zlib
from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.codec import (
    V2_COMPRESSION_COOKIE_BASE,
    ExternalHeader,
    HdrCookieException,
    HdrLengthException,
    PayloadHeader,
    ext_header_size,
    get_cookie_base,
    payload_header_size,
)
from hdrh.histogram import HdrHistogram
from pyhdrh import add_array
from pyhdrh import decode as hdr_decode

LOWEST_US = 1
"""Smallest distinguishable value, µs. Smaller values (including 0 ms) are recorded as 1 µs."""

HIGHEST_US = 3_600_000_000
"""Largest value recorded as itself, µs (1 hour). Larger values are clamped and counted."""

SIGNIFICANT_DIGITS = 3
"""Decimal digits of precision kept at every magnitude (0.1 % worst quantisation)."""

PERCENTILES: dict[str, float] = {
    "p50": 50.0,
    "p90": 90.0,
    "p95": 95.0,
    "p99": 99.0,
    "p999": 99.9,
}
"""Summary field name → percentile, in the order summaries list them."""

SUMMARY_KEYS: tuple[str, ...] = ("count", "min", "mean", *PERCENTILES, "max")
"""The exact keys of :meth:`LatencyHistogram.summary_ms`, as in summary.json."""

_HIGHEST_MS = HIGHEST_US / 1000.0
#: Values kept before they are counted (vectorised) while recording, not only when the
#: histogram is next read: counting a whole window's at its close held the event loop for
#: ~2.4 ms once a second at 500 streams (every read waiting behind it). numpy's fixed cost
#: per call outweighs a few hundred values' own: 2,048 at a time halve the cost per value
#: against 512 (``bench/stream_path.py``, ``settle_gaps``) and hold the loop ~0.2 ms.
SETTLE_EVERY = 2048
_WIRE_PREFIX = b"LH1:"
_DECODE_ERRORS = (
    ValueError,
    TypeError,
    binascii.Error,
    zlib.error,
    HdrCookieException,
    HdrLengthException,
)


def _new_hdr() -> HdrHistogram:
    return _acyclic(HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))


def _acyclic(hdr: HdrHistogram) -> HdrHistogram:
    """Make the histogram's encoder point back at it weakly.

    ``hdrh`` gives every histogram an encoder that holds the histogram: a reference cycle, so
    no histogram (and its ~190 KiB counts array) is freed when dropped, only by the cyclic
    garbage collector, whose full passes are rare. A generator making a few histograms a
    second, or a report reading thousands, then grows by hundreds of MB (measured: 1 GB peak
    reading half an hour of windows). With a weak back reference they are freed at once.
    """
    encoder = hdr.encoder
    if not isinstance(encoder.histogram, weakref.ProxyType):
        encoder.histogram = weakref.proxy(hdr)
    return hdr


@functools.cache
def _scratch_counts(length: int) -> ctypes.Array[ctypes.c_int64]:
    """One zeroed counts array per process, reused by every :meth:`add_blob` (which leaves
    it zeroed again): no allocation per line."""
    return (ctypes.c_int64 * length)()


@functools.cache
def _reference_hdr() -> HdrHistogram:
    """An empty histogram of our shape, to compare decoded ones against (never recorded to)."""
    return _new_hdr()


def _shape(hdr: HdrHistogram) -> tuple[int, int, int, int]:
    """What must match for two histograms' counters to line up index by index."""
    return (hdr.bucket_count, hdr.sub_bucket_count, hdr.unit_magnitude, hdr.word_size)


class LatencyHistogram:
    """A mergeable latency histogram in microseconds, recorded and reported in milliseconds.

    Not thread-safe; under gevent it needs no lock because recording never yields.
    """

    __slots__ = ("_hdr", "_out_of_range", "_pending")

    def __init__(self) -> None:
        self._hdr = _new_hdr()
        self._out_of_range = 0
        #: Values (ms) recorded but not yet counted: counted together, vectorised, the first
        #: time anything reads the histogram (:meth:`_settled`).
        self._pending: list[float] = []

    @property
    def out_of_range(self) -> int:
        """Samples that lay outside [0 ms, 1 h]: recorded clamped to the nearest end, and
        counted here so a report can say its tail was cut (they are included in ``count``)."""
        self._settled()
        return self._out_of_range

    @out_of_range.setter
    def out_of_range(self, value: int) -> None:
        self._settled()
        self._out_of_range = value

    # -- recording -----------------------------------------------------------------------

    def record_ms(self, value_ms: float) -> None:
        """Record one duration.

        Args:
            value_ms: the duration in milliseconds. Rounded to the nearest microsecond; below
                1 µs (a real 0 ms included) it counts as 1 µs. Above 1 hour (or ``inf``) it is
                recorded as 1 hour and counted in :attr:`out_of_range`; a negative value is
                recorded as 1 µs and counted there too.

        Raises:
            ValueError: ``value_ms`` is NaN (a caller bug worth failing loudly on).
        """
        if value_ms != value_ms:
            raise ValueError("cannot record NaN")
        pending = self._pending
        pending.append(value_ms)
        if len(pending) >= SETTLE_EVERY:
            self._settled()

    def record_many_ms(self, values_ms: Iterable[float]) -> None:
        """Record several durations (a stream's chunk gaps), each as :meth:`record_ms` does.

        The values are kept and counted together when the histogram is next read (a window
        closing) or once :data:`SETTLE_EVERY` are waiting: numpy computes ~40 counter indices
        in about the time Python computes one, and a stream's 39 gaps took ~13 µs of the
        client's CPU per stream (a third of recording it). ``tests/metrics/test_histogram.py``
        holds the result against hdrh's own ``record_value``.

        Raises:
            ValueError: a value is NaN; those before it are recorded.
        """
        values = values_ms if isinstance(values_ms, list) else list(values_ms)
        total = sum(values)
        if total != total:  # a NaN (or inf and -inf, which record_now tells apart)
            self._record_now(values)
            return
        pending = self._pending
        pending += values
        if len(pending) >= SETTLE_EVERY:
            self._settled()

    def _settled(self) -> HdrHistogram:
        """The ``hdrh`` histogram with every pending value counted."""
        pending = self._pending
        if pending:
            self._pending = []
            self._record_vectorised(pending)
        return self._hdr

    def _record_vectorised(self, values_ms: list[float]) -> None:
        """Count finite-or-infinite values as :meth:`_record_now` does, in numpy."""
        hdr = self._hdr
        ms = np.array(values_ms, dtype=np.float64)
        above = ms > _HIGHEST_MS
        below = ms < 0.0
        with np.errstate(invalid="ignore", over="ignore"):
            micros = np.rint(ms * 1000.0)  # half to even, as round() does
        micros[above] = HIGHEST_US
        value_us = np.maximum(micros, LOWEST_US).astype(np.int64)
        # bit_length of (value | mask), exactly: frexp's exponent of an integer below 2**53.
        bit_length = np.frexp((value_us | hdr.sub_bucket_mask).astype(np.float64))[1]
        bucket = bit_length - (hdr.unit_magnitude + hdr.sub_bucket_half_count_magnitude + 1)
        index = (
            ((bucket + 1) << hdr.sub_bucket_half_count_magnitude)
            + (value_us >> (bucket + hdr.unit_magnitude))
            - hdr.sub_bucket_half_count
        )
        # bincount over the span the values use, then one slice add: ~10x faster than
        # np.add.at, whose per-element dispatch took half of a window's merge (measured).
        low = int(index.min())
        counts = np.ctypeslib.as_array(hdr.counts)
        counts[low : int(index.max()) + 1] += np.bincount(index - low).astype(counts.dtype)
        self._out_of_range += int(np.count_nonzero(above) + np.count_nonzero(below))
        hdr.total_count += len(value_us)
        hdr.min_value = min(hdr.min_value, int(value_us.min()))
        hdr.max_value = max(hdr.max_value, int(value_us.max()))

    def _record_now(self, values_ms: Iterable[float]) -> None:
        """Count values one by one, as ``hdrh``'s ``record_value`` computes the counter index
        (its ``_clz`` is ``64 - int.bit_length``), with every value clamped into range first,
        so every index is valid. The reference for :meth:`_record_vectorised`.

        Raises:
            ValueError: a value is NaN; those before it are recorded.
        """
        hdr = self._settled()
        counts = hdr.counts
        mask = hdr.sub_bucket_mask
        unit = hdr.unit_magnitude
        half_magnitude = hdr.sub_bucket_half_count_magnitude
        offset = hdr.sub_bucket_half_count
        base_shift = unit + half_magnitude + 1
        low, high = hdr.min_value, hdr.max_value
        recorded = 0
        try:
            for value_ms in values_ms:
                if value_ms > _HIGHEST_MS:
                    value_us = HIGHEST_US
                    self._out_of_range += 1
                elif value_ms < 0.0:
                    value_us = LOWEST_US
                    self._out_of_range += 1
                else:
                    value_us = round(value_ms * 1000.0)  # NaN raises ValueError here
                    if value_us < LOWEST_US:
                        value_us = LOWEST_US
                bucket = (value_us | mask).bit_length() - base_shift
                index = ((bucket + 1) << half_magnitude) + (value_us >> (bucket + unit)) - offset
                counts[index] += 1
                recorded += 1
                if value_us < low:
                    low = value_us
                if value_us > high:
                    high = value_us
        finally:  # a NaN mid-way: what was counted so far stays consistent
            hdr.total_count += recorded
            hdr.min_value, hdr.max_value = low, high

    # -- size and access -----------------------------------------------------------------

    @property
    def count(self) -> int:
        """Samples recorded, out-of-range ones included."""
        return int(self._settled().get_total_count())

    @property
    def hdr(self) -> HdrHistogram:
        """The underlying ``hdrh`` histogram (µs), for tools that want the raw object."""
        return self._settled()

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"LatencyHistogram(count={self.count}, out_of_range={self.out_of_range})"

    # -- combining -----------------------------------------------------------------------

    def merge(self, other: LatencyHistogram) -> None:
        """Add every sample of ``other`` into this histogram (``other`` is unchanged).

        Merging is exact: the merged histogram's percentiles equal those of one histogram fed
        all the samples, which is what makes per-worker and per-window histograms poolable.

        Args:
            other: the histogram to add.
        """
        mine, theirs = self._settled(), other._settled()
        self._out_of_range += other._out_of_range
        if not theirs.get_total_count():
            return
        if _shape(mine) != _shape(theirs):
            # HdrHistogram.add() sets min from get_min_value(), which is 0 for an empty side:
            # remember the real minima and restore them.
            minima = [h.min_value for h in (mine, theirs) if h.get_total_count()]
            mine.add(theirs)
            mine.min_value = min(minima)
            return
        # Same shape: add only the span of counters the other side uses (a window's samples
        # sit in a few hundred of ~23,500), not the whole array as hdrh's add() does.
        low, high = _used_span(theirs)
        length = high - low + 1
        add_array(ctypes.addressof(mine.counts) + low * 8,
                  ctypes.addressof(theirs.counts) + low * 8, length, 8)  # fmt: skip
        mine.min_value = (
            theirs.min_value if not mine.total_count else min(mine.min_value, theirs.min_value)
        )
        mine.max_value = max(mine.max_value, theirs.max_value)
        mine.total_count += theirs.total_count

    def add_blob(self, blob: bytes) -> None:
        """Add a standard HdrHistogram blob (an interval-log line's) into this histogram.

        The same result as ``merge(decode(blob))``, without building a histogram for the blob:
        its counters are decoded into one scratch array and only their non-zero span is added.
        A reader merging hundreds of thousands of window lines spends ~8 µs a line here
        instead of ~65 µs (allocating, zeroing and adding a whole ~190 KiB counts array).
        A blob of another shape takes the slow, general path.

        Raises:
            ValueError: not an encoded HdrHistogram.
        """
        try:
            raw = base64.b64decode(blob)
            header = ExternalHeader.from_buffer_copy(raw)
            data = zlib.decompress(raw[ext_header_size:])
            payload = PayloadHeader.from_buffer_copy(data)
        except (*_DECODE_ERRORS, IndexError) as exc:
            raise ValueError(f"not an encoded HdrHistogram: {exc}") from exc
        hdr = self._settled()
        if (
            get_cookie_base(header.cookie) != V2_COMPRESSION_COOKIE_BASE
            or payload.lowest_trackable_value != hdr.lowest_trackable_value
            or payload.highest_trackable_value != hdr.highest_trackable_value
            or payload.significant_figures != hdr.significant_figures
        ):
            self.merge(LatencyHistogram.decode(blob))
            return
        scratch = _scratch_counts(hdr.counts_len)
        found = hdr_decode(data, payload_header_size, ctypes.addressof(scratch), hdr.counts_len, 8)
        total = found["total"]
        low, high = found["min_nonzero_index"], found["max_nonzero_index"]
        if not total or low < 0:
            return
        span = high - low + 1
        source = ctypes.addressof(scratch) + low * 8
        add_array(ctypes.addressof(hdr.counts) + low * 8, source, span, 8)
        ctypes.memset(source, 0, span * 8)
        lowest = hdr.get_value_from_index(low)
        highest = hdr.get_highest_equivalent_value(hdr.get_value_from_index(high))
        hdr.min_value = lowest if not hdr.total_count else min(hdr.min_value, lowest)
        hdr.max_value = max(hdr.max_value, highest)
        hdr.total_count += total

    def copy(self) -> LatencyHistogram:
        """Return an independent histogram with the same samples and out-of-range count."""
        clone = LatencyHistogram()
        clone.merge(self)
        return clone

    # -- encoding ------------------------------------------------------------------------

    def to_hdr_blob(self) -> bytes:
        """The standard HdrHistogram V2 compressed, base64 blob (µs), without out_of_range.

        Any HdrHistogram implementation (Java, C, Go, Python) reads it; the interval log uses
        it, and stores out_of_range beside it.
        """
        return bytes(self._settled().encode())

    def encode(self) -> bytes:
        """Encode for the wire (e.g. a Locust worker report, which is msgpack).

        Returns:
            ``b"LH1:<out_of_range>:"`` followed by :meth:`to_hdr_blob`. The prefix keeps the
            out-of-range count with the samples it describes.
        """
        return b"%s%d:%s" % (_WIRE_PREFIX, self.out_of_range, self.to_hdr_blob())

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        """Rebuild a histogram from :meth:`encode` (or from a bare standard HdrHistogram blob,
        whose out_of_range is then 0).

        Args:
            data: the encoded bytes.

        Returns:
            A new histogram.

        Raises:
            ValueError: ``data`` is not an encoded histogram.
        """
        out_of_range = 0
        blob = bytes(data)
        if blob.startswith(_WIRE_PREFIX):
            try:
                count_text, blob = blob[len(_WIRE_PREFIX) :].split(b":", 1)
                out_of_range = int(count_text)
            except ValueError as exc:
                raise ValueError("malformed encoded histogram header") from exc
        try:
            hdr = HdrHistogram.decode(blob)
        except _DECODE_ERRORS as exc:
            raise ValueError(f"not an encoded HdrHistogram: {exc}") from exc
        return cls.from_hdr(hdr, out_of_range)

    @classmethod
    def from_hdr(cls, hdr: HdrHistogram, out_of_range: int = 0) -> LatencyHistogram:
        """Wrap an ``hdrh`` histogram of microseconds (e.g. one read from an interval log).

        A histogram of another shape is re-recorded into ours, so that later merges line up.

        Args:
            hdr: the histogram; not copied when its shape matches ours.
            out_of_range: the out-of-range count that belongs with it.

        Returns:
            The wrapper.
        """
        if _shape(hdr) == _shape(_reference_hdr()):
            wrapped = cls.__new__(cls)
            wrapped._hdr = _acyclic(hdr)
            wrapped._pending = []
            wrapped._out_of_range = 0
        else:
            wrapped = cls()
            if hdr.get_total_count():
                wrapped._hdr.add(hdr)
        wrapped.out_of_range = out_of_range
        return wrapped

    # -- reading -------------------------------------------------------------------------

    def summary_ms(self) -> dict[str, float | int]:
        """Summarise in milliseconds, with HdrHistogram's definitions (see the module doc).

        Returns:
            ``{"count", "min", "mean", "p50", "p90", "p95", "p99", "p999", "max"}``: ``count``
            an int, the rest floats in ms rounded to 3 decimals (1 µs). An empty histogram
            gives ``count`` 0 and 0.0 everywhere else (as summary.json always has every field):
            read ``count`` before trusting a percentile.
        """
        hdr = self._settled()
        total = int(hdr.get_total_count())
        if total == 0:
            return dict.fromkeys(SUMMARY_KEYS, 0.0) | {"count": 0}
        low, high = _used_span(hdr)
        counts = np.ctypeslib.as_array(hdr.counts)[low : high + 1]
        nonzero = np.flatnonzero(counts) + low
        weights = np.ctypeslib.as_array(hdr.counts)[nonzero].astype(np.int64)
        lowest, width = bucket_bounds(hdr, nonzero)
        # Mean as HdrHistogram.get_mean_value defines it: the count-weighted midpoints of the
        # equivalent ranges, summed in exact integers as the package does.
        midpoints = (lowest + (width >> 1)).tolist()
        mean_us = sum(map(operator.mul, midpoints, weights.tolist())) / total
        # Percentiles as HdrHistogram.get_value_at_percentile: the target rank, then the
        # highest value equivalent to the first bucket whose cumulative count reaches it.
        cumulative = np.cumsum(weights)
        highest = lowest + width - 1
        result: dict[str, float | int] = {
            "count": total,
            "min": _ms(hdr.get_min_value()),
            "mean": round(mean_us / 1000.0, 3),
        }
        for name, percentile in PERCENTILES.items():
            target = max(int(percentile * total / 100 + 0.5), 1)
            position = int(np.searchsorted(cumulative, target, side="left"))
            result[name] = _ms(int(highest[position]))
        result["max"] = _ms(hdr.get_max_value())
        return result

    def values_at_percentiles_ms(self, percentiles: Sequence[float]) -> list[float]:
        """Several percentiles in ms in one scan, with the definitions of :meth:`summary_ms`.

        Args:
            percentiles: each in [0, 100].

        Returns:
            One value per percentile; empty histogram: all 0.0.
        """
        hdr = self._settled()
        total = int(hdr.get_total_count())
        if total == 0:
            return [0.0 for _ in percentiles]
        low, high = _used_span(hdr)
        counts = np.ctypeslib.as_array(hdr.counts)
        nonzero = np.flatnonzero(counts[low : high + 1]) + low
        cumulative = np.cumsum(counts[nonzero].astype(np.int64))
        lowest, width = bucket_bounds(hdr, nonzero)
        highest = lowest + width - 1
        values = []
        for percentile in percentiles:
            target = max(int(percentile * total / 100 + 0.5), 1)
            position = min(int(np.searchsorted(cumulative, target, side="left")), len(highest) - 1)
            values.append(_ms(int(highest[position])))
        return values

    def value_at_percentile_ms(self, percentile: float) -> float:
        """One percentile in ms, for ad-hoc questions (slow: scans every counter).

        Args:
            percentile: in [0, 100].

        Returns:
            The value, or 0.0 for an empty histogram.
        """
        return _ms(self._settled().get_value_at_percentile(percentile))


def _used_span(hdr: HdrHistogram) -> tuple[int, int]:
    """First and last counter index that can be non-zero (from the recorded min and max)."""
    low = hdr.get_counts_array_index(max(hdr.min_value, 0)) if hdr.total_count else 0
    high = hdr.get_counts_array_index(hdr.max_value) if hdr.total_count else 0
    return min(low, hdr.counts_len - 1), min(high, hdr.counts_len - 1)


def bucket_bounds(hdr: HdrHistogram, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lowest value and width (µs) of the buckets at counts-array ``indices``.

    A vectorised ``get_value_from_index`` and ``_hdr_size_of_equiv_value_range``: for a value
    that starts a bucket, the bucket index computed from the counts index is the one the package
    recomputes from the value, so the results are identical (the tests check this).
    """
    half_magnitude = hdr.sub_bucket_half_count_magnitude
    half_count = hdr.sub_bucket_half_count
    bucket = (indices >> half_magnitude) - 1
    sub_bucket = (indices & (half_count - 1)) + half_count
    first = bucket < 0
    sub_bucket[first] -= half_count
    bucket[first] = 0
    shift = bucket + hdr.unit_magnitude
    return sub_bucket << shift, np.left_shift(1, shift)


def _ms(value_us: int) -> float:
    return round(value_us / 1000.0, 3)
