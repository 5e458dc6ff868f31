"""LoadGen's random streams against independent truth.

* The C++ standard's check value for mt19937 and its well-known first output.
* Where a C++ compiler is present: a small program using libstdc++'s own
  ``std::mt19937``, ``std::shuffle``, ``std::uniform_int_distribution`` and
  ``std::exponential_distribution`` (the components LoadGen uses), compared draw by
  draw, including where the engine stands afterwards.
* Scalar re-statements of the documented algorithms, to check that the vectorised code
  consumes exactly the raw outputs the sequential algorithm would.
(The streams are also checked against the real LoadGen in test_traffic_vs_loadgen.py.)
"""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest

from sim.loadgen import rng as R


def test_mt19937_check_value_of_the_cpp_standard():
    rng = R.MT19937()  # default seed 5489
    raw = rng.draw(10000)
    assert int(raw[-1]) == R.MT19937_CHECK_VALUE == 4123659995
    assert int(raw[0]) == 3499211612  # first output of a default-seeded mt19937


def test_seed_is_taken_mod_2_pow_32():
    a = R.MT19937(2085463073848966840)
    b = R.MT19937(2085463073848966840 % 2**32)
    assert np.array_equal(a.draw(1000), b.draw(1000))


def test_peek_advance_and_draw_agree_with_one_long_draw():
    whole = R.MT19937(7).draw(300000)
    rng = R.MT19937(7)
    got = [rng.peek(10).copy()]
    rng.advance(10)
    got.append(rng.draw(5))
    got.append(np.array([rng()], dtype=np.uint64))
    got.append(rng.draw(200000))
    got.append(rng.draw(300000 - rng.consumed))
    assert np.array_equal(np.concatenate(got), whole)


def _scalar_lemire(raw_iter, r: int) -> int:
    """Lemire's method as documented (libstdc++, 32-bit engine): one draw in [0, r)."""
    threshold = (2**32 - r) % r
    while True:
        product = next(raw_iter) * r
        if (product & 0xFFFFFFFF) >= threshold:
            return product >> 32


@pytest.mark.parametrize("r", [1, 2, 3, 10, 1024, 1 << 31, (1 << 31) + 1, 3_000_000_000, 2**32 - 1])
def test_vectorised_uniform_consumes_exactly_like_the_scalar_algorithm(r):
    raw = iter(R.MT19937(11).draw(60000).tolist())
    expected = [_scalar_lemire(raw, r) for _ in range(20000)]
    rng = R.MT19937(11)
    got = R.uniform_int(rng, 0, r - 1, 20000)
    assert got.tolist() == expected
    assert rng() == next(raw)  # the same number of raw outputs was consumed


def test_variable_ranges_consume_exactly_like_the_scalar_algorithm():
    ranges = np.random.default_rng(3).integers(1, 2**32, size=5000, dtype=np.uint64)
    raw = iter(R.MT19937(5).draw(40000).tolist())
    expected = [_scalar_lemire(raw, int(r)) for r in ranges]
    rng = R.MT19937(5)
    assert R.uniform_below(rng, ranges).tolist() == expected
    assert rng() == next(raw)


def _scalar_shuffle(values: list, raw_iter) -> list:
    """libstdc++'s std::shuffle restated: pairs of positions from one draw when n*n fits."""
    a = list(values)
    n = len(a)
    if n <= 1:
        return a
    if (2**32 - 1) // n >= n:
        i = 1
        if n % 2 == 0:
            j = _scalar_lemire(raw_iter, 2)
            a[1], a[j] = a[j], a[1]
            i = 2
        while i != n:
            b0 = i + 1
            x = _scalar_lemire(raw_iter, b0 * (b0 + 1))
            j1, j2 = x // (b0 + 1), x % (b0 + 1)
            a[i], a[j1] = a[j1], a[i]
            a[i + 1], a[j2] = a[j2], a[i + 1]
            i += 2
        return a
    for i in range(1, n):
        j = _scalar_lemire(raw_iter, i + 1)
        a[i], a[j] = a[j], a[i]
    return a


@pytest.mark.parametrize("n", [0, 1, 2, 3, 8, 1023, 1024, 65535, 65536, 70001])
def test_shuffle_matches_the_scalar_algorithm(n):
    raw = iter(R.MT19937(2747215439041700203).draw(4 * n + 1000).tolist())
    expected = _scalar_shuffle(list(range(n)), raw)
    rng = R.MT19937(2747215439041700203)
    got = R.shuffle(rng, np.arange(n))
    assert got.tolist() == expected
    assert sorted(expected) == list(range(n))
    assert rng() == next(raw)


def test_generate_canonical_and_exponential_follow_the_formula():
    raw = R.MT19937(9).draw(2000).tolist()
    u = R.generate_canonical(R.MT19937(9), 1000)
    for k in range(1000):
        lo, hi = raw[2 * k], raw[2 * k + 1]
        assert u[k] == (float(lo) + float(hi) * 2.0**32) / 2.0**64
    assert (u >= 0).all() and (u < 1).all()


def test_exponential_ns_equals_c_library_log_path():
    """The numpy fast path must agree with the C library's log (math.log) everywhere."""
    qps = 3000.0
    u = R.generate_canonical(R.MT19937(16159082839903944936), 200000)
    expected = [math.trunc((-math.log(1.0 - x) / qps) * 1e9) for x in u.tolist()]
    got = R.exponential_ns(R.MT19937(16159082839903944936), qps, 200000)
    assert got.tolist() == expected
    assert abs(got.mean() / 1e9 - 1 / qps) < 0.01 / qps


_CPP = r"""
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>
int main(int argc, char** argv) {
  uint64_t seed = strtoull(argv[2], nullptr, 10);
  long n = atol(argv[3]);
  std::mt19937 g(seed);
  if (!strcmp(argv[1], "shuffle")) {
    std::vector<size_t> v(n); std::iota(v.begin(), v.end(), 0);
    std::shuffle(v.begin(), v.end(), g);
    for (auto x : v) printf("%zu\n", x);
  } else if (!strcmp(argv[1], "uniform")) {
    std::uniform_int_distribution<> d(0, atol(argv[4]));
    for (long i = 0; i < n; i++) printf("%d\n", d(g));
  } else {
    std::exponential_distribution<> d(atof(argv[4]));
    for (long i = 0; i < n; i++)
      printf("%ld\n", (long)std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::duration<double>(d(g))).count());
  }
  printf("%lu\n", (unsigned long)g());
}
"""


@pytest.fixture(scope="module")
def libstdcxx(tmp_path_factory):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no g++: libstdc++ cross-check skipped")
    d = tmp_path_factory.mktemp("cxx")
    (d / "ref.cc").write_text(_CPP)
    subprocess.run([cxx, "-O1", "-o", str(d / "ref"), str(d / "ref.cc")], check=True)

    def run(*args):
        out = subprocess.run([str(d / "ref"), *map(str, args)], check=True,
                             capture_output=True, text=True).stdout.split()
        return [int(x) for x in out[:-1]], int(out[-1])
    return run


@pytest.mark.parametrize("seed", [0, 2085463073848966840, 2747215439041700203])
@pytest.mark.parametrize("n", [1, 6, 7, 1024, 40000, 65536, 100003])
def test_shuffle_matches_libstdcxx(libstdcxx, seed, n):
    expected, next_raw = libstdcxx("shuffle", seed, n)
    rng = R.MT19937(seed)
    assert R.shuffle(rng, np.arange(n)).tolist() == expected
    assert rng() == next_raw


@pytest.mark.parametrize("high", [0, 1, 99, 1023, 123456, 2**31 - 1])
def test_uniform_int_matches_libstdcxx(libstdcxx, high):
    expected, next_raw = libstdcxx("uniform", 2747215439041700203, 20000, high)
    rng = R.MT19937(2747215439041700203)
    assert R.uniform_int(rng, 0, high, 20000).tolist() == expected
    assert rng() == next_raw


@pytest.mark.parametrize("qps", [0.5, 1000.0, 3333.3, 80000.0])
def test_exponential_ns_matches_libstdcxx(libstdcxx, qps):
    expected, next_raw = libstdcxx("exp", 16159082839903944936, 200000, qps)
    rng = R.MT19937(16159082839903944936)
    assert R.exponential_ns(rng, qps, 200000).tolist() == expected
    assert rng() == next_raw
