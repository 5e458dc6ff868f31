"""LoadGen's random streams, reproduced bit for bit in Python.

LoadGen draws every random choice it makes (which samples are loaded, which sample each
query carries, when each Server query arrives) from ``std::mt19937`` engines, through the
C++ standard library that built it. The wheel on PyPI is built with GCC, so the streams
are those of libstdc++. This module re-implements exactly the pieces LoadGen uses:

``MT19937``
    The Mersenne Twister engine. libstdc++ seeds it with ``seed mod 2**32`` through the
    standard ``init_genrand`` recurrence; the raw 32-bit outputs then come from numpy's
    ``MT19937`` bit generator (the same algorithm), put into that seeded state. Outputs
    are drawn in bulk and buffered, so a consumer can look ahead (``peek``) and then
    take only what it really used (``advance``): this is how rejection sampling stays
    exact while being vectorised.

``uniform_int``, ``uniform_below``
    ``std::uniform_int_distribution`` as libstdc++ implements it for an engine with a
    32-bit output range: Lemire's "nearly divisionless" method. A raw output ``g`` is
    multiplied by the range size ``r`` in 64 bits; the low 32 bits decide rejection
    (rejected when below ``2**32 mod r``) and the high 32 bits are the result. Each
    rejected draw consumes one more raw output.

``shuffle``
    ``std::shuffle`` as libstdc++ implements it: a forward Fisher-Yates shuffle that,
    when ``n * n`` fits in the engine's range (``n <= 65535`` for mt19937), draws the two
    swap positions of two consecutive steps from one uniform draw over ``b * (b + 1)``
    values (``x // (b + 1)`` and ``x % (b + 1)``), after one extra {0, 1} draw for an
    even ``n``. Larger ranges draw one position per step. Positions are drawn
    vectorised (``shuffle_swaps``); the swaps are then applied in batches of steps that
    touch distinct positions (``apply_swaps``), which gives the sequential result.

``generate_canonical``, ``exponential``
    ``std::generate_canonical<double, 53>`` takes two raw outputs ``lo, hi`` and returns
    ``(lo + hi * 2**32) / 2**64`` (the sum rounded to double; a result of 1.0 becomes the
    largest double below 1). ``std::exponential_distribution`` returns
    ``-log(1 - u) / lambda``. numpy's vectorised ``log`` may differ from the C library's
    ``log`` in the last bit, so values that a last-bit difference could move across a
    whole nanosecond are recomputed with ``math.log`` (the C library's).

Everything is deterministic: the same seed gives the same stream on every machine.
"""

from __future__ import annotations

import math

import numpy as np

_MASK32 = 0xFFFFFFFF
_TWO32 = 1 << 32
_N = 624

#: The C++ standard's check value: the 10000th output of a default-seeded std::mt19937.
MT19937_CHECK_VALUE = 4123659995
#: std::mt19937::default_seed.
MT19937_DEFAULT_SEED = 5489


def init_genrand_key(seed: int) -> np.ndarray:
    """The 624-word state ``std::mt19937(seed)`` starts from (libstdc++ takes seed mod 2**32)."""
    key = [0] * _N
    x = int(seed) % _TWO32
    key[0] = x
    for i in range(1, _N):
        x = (1812433253 * (x ^ (x >> 30)) + i) & _MASK32
        key[i] = x
    return np.array(key, dtype=np.uint32)


class MT19937:
    """``std::mt19937`` with bulk, look-ahead access to its raw 32-bit outputs.

    ``draw(n)`` consumes and returns the next ``n`` outputs (as ``uint64``);
    ``peek(n)`` returns them without consuming; ``advance(n)`` consumes ``n`` already
    peeked outputs; ``consumed`` counts every output taken so far.
    """

    _REFILL = 1 << 16

    def __init__(self, seed: int = MT19937_DEFAULT_SEED) -> None:
        self.seed = int(seed)
        self._bitgen = np.random.MT19937(0)
        self._bitgen.state = {
            "bit_generator": "MT19937",
            "state": {"key": init_genrand_key(seed), "pos": _N},
        }
        self._buf = np.empty(0, dtype=np.uint64)
        self._pos = 0
        self.consumed = 0

    def _buffered(self) -> int:
        return self._buf.size - self._pos

    def peek(self, n: int) -> np.ndarray:
        """The next ``n`` outputs, not consumed."""
        have = self._buffered()
        if have < n:
            extra = self._bitgen.random_raw(max(n - have, self._REFILL))
            self._buf = np.concatenate((self._buf[self._pos:], extra))
            self._pos = 0
        return self._buf[self._pos:self._pos + n]

    def advance(self, n: int) -> None:
        """Consume ``n`` outputs (they must have been peeked)."""
        if n > self._buffered():
            raise ValueError("advance past the peeked outputs")
        self._pos += n
        self.consumed += n

    def draw(self, n: int) -> np.ndarray:
        """Consume and return the next ``n`` outputs (``uint64`` holding 32-bit values)."""
        n = int(n)
        if self._buffered() == 0 and n >= self._REFILL:
            out = self._bitgen.random_raw(n)  # large request: skip the buffer copy
            self.consumed += n
            return out
        out = self.peek(n).copy()
        self.advance(n)
        return out

    def __call__(self) -> int:
        """One output, as ``engine()`` in C++."""
        return int(self.draw(1)[0])

    def discard(self, n: int) -> None:
        """Skip ``n`` outputs, as ``engine.discard(n)``."""
        while n > 0:
            step = min(n, 1 << 22)
            self.draw(step)
            n -= step


# ---------------------------------------------------------------------------------------
# uniform_int_distribution (libstdc++, 32-bit engine range: Lemire's method)


def _thresholds(r: np.ndarray) -> np.ndarray:
    """``2**32 mod r`` per range size (as ``-r % r`` in 32-bit unsigned arithmetic)."""
    return (np.uint64(_TWO32) - r) % r


def uniform_below(rng: MT19937, ranges) -> np.ndarray:
    """One draw in ``[0, r)`` per entry of ``ranges``, in order, as libstdc++ does.

    Each draw is ``uniform_int_distribution{0, r - 1}(rng)``; ``r`` may differ per draw
    (``1 <= r <= 2**32``). Returns ``uint64``.
    """
    r = np.asarray(ranges, dtype=np.uint64)
    n = r.size
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    if int(r.min()) < 1 or int(r.max()) > _TWO32:
        raise ValueError("range sizes must be in [1, 2**32] for a 32-bit engine")
    full = r == np.uint64(_TWO32)  # the engine's whole range: the raw output itself
    r_lemire = np.where(full, np.uint64(1), r)
    thr = np.where(full, np.uint64(0), _thresholds(r_lemire))
    # expected rejections so far: each pass covers about half an expected rejection
    expected = np.concatenate(([0.0], np.cumsum(thr / float(_TWO32))))
    k = 0
    while k < n:
        end = int(np.searchsorted(expected, expected[k] + 0.5, side="right")) - 1
        m = min(n - k, max(64, min(end - k, 1 << 20)))
        g = rng.peek(m)
        rk = r_lemire[k:k + m]
        prod = g * rk
        rejected = (prod & np.uint64(_MASK32)) < thr[k:k + m]
        value = np.where(full[k:k + m], g, prod >> np.uint64(32))
        j = int(np.argmax(rejected)) if rejected.any() else m
        out[k:k + j] = value[:j]
        if j == m:
            rng.advance(m)
        else:
            rng.advance(j + 1)  # j accepted outputs and the rejected one
        k += j  # on a rejection, draw k retries with the next output
    return out


def uniform_int(rng: MT19937, low: int, high: int, size: int | None = None):
    """``std::uniform_int_distribution<>(low, high)`` drawn ``size`` times (or once).

    Vectorised: outputs are over-drawn and only those the C++ loop would have consumed
    (accepted draws and the rejected ones before them) are taken from the stream.
    Returns ``int64``.
    """
    span = int(high) - int(low) + 1
    if span < 1:
        raise ValueError(f"empty range [{low}, {high}]")
    if span > _TWO32:
        raise ValueError("ranges wider than 32 bits are not used by LoadGen")
    if size is None:
        return int(uniform_int(rng, low, high, 1)[0])
    size = int(size)
    out = np.empty(size, dtype=np.int64)
    if span == _TWO32:
        out[:] = rng.draw(size).astype(np.int64) + int(low)
        return out
    r = np.uint64(span)
    thr = np.uint64(_thresholds(np.array([span], dtype=np.uint64))[0])
    mask = np.uint64(_MASK32)
    shift = np.uint64(32)
    k = 0
    while k < size:
        need = min(size - k, 1 << 20)
        # rejection probability is thr / 2**32: over-draw a little, take what was used
        margin = int(need * int(thr) // _TWO32) + 64 + need // 1000
        prod = rng.peek(need + margin) * r
        ok = (prod & mask) >= thr
        if ok[:need].all():
            take = need  # no rejection among the first `need` outputs
            out[k:k + need] = prod[:need] >> shift
        else:
            idx = np.flatnonzero(ok)[:need]
            take = int(idx[-1]) + 1 if idx.size else prod.size
            out[k:k + idx.size] = prod[idx] >> shift
            need = idx.size
        rng.advance(take)
        k += need
    if low:
        out += int(low)
    return out


# ---------------------------------------------------------------------------------------
# std::shuffle (libstdc++)


def shuffle_swaps(rng: MT19937, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The swap list ``std::shuffle`` performs on ``n`` elements: ``a[i] <-> a[j]`` in order.

    Returns ``(i, j)`` as ``int64`` arrays; the random positions are drawn from ``rng``.
    """
    n = int(n)
    if n <= 1:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    if (_MASK32 // n) >= n:
        # two positions from one draw, for steps i and i + 1
        first = 1
        pre_i = np.empty(0, np.int64)
        pre_j = np.empty(0, np.int64)
        if n % 2 == 0:
            pre_i = np.array([1], np.int64)
            pre_j = uniform_below(rng, [2]).astype(np.int64)
            first = 2
        i = np.arange(first, n, 2, dtype=np.int64)
        b = (i + 1).astype(np.uint64)  # positions [0, i] for step i
        x = uniform_below(rng, b * (b + np.uint64(1)))
        b1 = b + np.uint64(1)  # positions [0, i + 1] for step i + 1
        pos_i = (x // b1).astype(np.int64)
        pos_i1 = (x % b1).astype(np.int64)
        ii = np.empty(2 * i.size, np.int64)
        jj = np.empty(2 * i.size, np.int64)
        ii[0::2], ii[1::2] = i, i + 1
        jj[0::2], jj[1::2] = pos_i, pos_i1
        return np.concatenate((pre_i, ii)), np.concatenate((pre_j, jj))
    i = np.arange(1, n, dtype=np.int64)
    j = uniform_below(rng, (i + 1).astype(np.uint64)).astype(np.int64)
    return i, j


def apply_swaps(values, swaps_i: np.ndarray, swaps_j: np.ndarray) -> np.ndarray:
    """Apply the swaps ``a[i] <-> a[j]`` in order to a copy of ``values``.

    The swaps come from a forward Fisher-Yates shuffle: ``i`` increases and ``j <= i``.
    Early steps (small ``i``, where positions collide often) run one by one; later ones
    are applied in batches whose positions are all distinct, so order within a batch
    does not matter. A batch ends before the first step that would reuse a position.
    """
    a = np.array(values)
    si = np.asarray(swaps_i, dtype=np.int64)
    sj = np.asarray(swaps_j, dtype=np.int64)
    n = si.size
    k = int(np.searchsorted(si, 4096))  # steps with i < 4096: one by one
    if k:
        head = a[:int(si[k - 1]) + 1].tolist()
        for i, j in zip(si[:k].tolist(), sj[:k].tolist()):
            head[i], head[j] = head[j], head[i]
        a[:len(head)] = head
    while k < n:
        size = max(64, int(math.sqrt(float(si[k]))) // 2)
        ii = si[k:k + size]
        jj = sj[k:k + size]
        # a j inside the batch's own i range (other than its own i) was an earlier i
        clash = (jj >= ii[0]) & (jj != ii)
        order = np.argsort(jj, kind="stable")
        repeated = np.zeros(jj.size, dtype=bool)
        repeated[order[1:]] = jj[order[1:]] == jj[order[:-1]]
        clash |= repeated
        m = int(np.argmax(clash)) if clash.any() else jj.size
        if m == 0:
            i, j = int(ii[0]), int(jj[0])
            a[i], a[j] = a[j], a[i]
            k += 1
            continue
        ib, jb = ii[:m], jj[:m]
        ai = a[ib]
        a[ib] = a[jb]
        a[jb] = ai
        k += m
    return a


def shuffle(rng: MT19937, values) -> np.ndarray:
    """``std::shuffle(values.begin(), values.end(), rng)``: returns the shuffled copy."""
    values = np.asarray(values)
    si, sj = shuffle_swaps(rng, values.size)
    return apply_swaps(values, si, sj)


# ---------------------------------------------------------------------------------------
# generate_canonical<double, 53> and exponential_distribution<double>

_NEXT_BELOW_ONE = math.nextafter(1.0, 0.0)


def generate_canonical(rng: MT19937, size: int) -> np.ndarray:
    """``std::generate_canonical<double, 53>(rng)`` drawn ``size`` times (2 outputs each)."""
    g = rng.draw(2 * int(size)).astype(np.float64)
    u = (g[0::2] + g[1::2] * 4294967296.0) / 18446744073709551616.0
    u[u >= 1.0] = _NEXT_BELOW_ONE
    return u


def exponential(rng: MT19937, lam: float, size: int) -> np.ndarray:
    """``std::exponential_distribution<double>(lam)`` drawn ``size`` times."""
    u = generate_canonical(rng, size)
    return -np.log(1.0 - u) / lam


def exponential_ns(rng: MT19937, lam: float, size: int) -> np.ndarray:
    """Exponential draws in seconds, cast to whole nanoseconds as ``std::chrono`` does.

    ``duration_cast<nanoseconds>(duration<double>(x))`` is ``trunc(x * 1e9)``. Draws
    whose product lies within a few last-bit steps of an integer are recomputed with the
    C library's ``log`` so that the truncation is decided exactly as in C++.
    """
    u = generate_canonical(rng, size)
    one_minus = 1.0 - u
    z = (-np.log(one_minus) / lam) * 1e9
    nearest = np.rint(z)
    risky = np.abs(z - nearest) <= np.maximum(np.abs(z), 1.0) * (64 * 2.0 ** -52)
    for k in np.flatnonzero(risky).tolist():
        z[k] = (-math.log(float(one_minus[k])) / lam) * 1e9
    return np.trunc(z).astype(np.int64)
