"""Tests for the seed README's create-script example: the sum of all primes below n.

Run by create-script in its sandbox; also by hand: ``pytest examples/prime_sum``.
"""

from prime_sum import sum_primes


def test_no_primes_below_two_or_less():
    assert sum_primes(0) == 0
    assert sum_primes(1) == 0
    assert sum_primes(2) == 0  # 2 itself is not below 2


def test_negative_numbers_have_no_primes_below_them():
    assert sum_primes(-10) == 0


def test_small_numbers():
    assert sum_primes(3) == 2
    assert sum_primes(5) == 2 + 3
    assert sum_primes(10) == 2 + 3 + 5 + 7


def test_n_itself_is_excluded_when_prime():
    assert sum_primes(11) == 17
    assert sum_primes(12) == 17 + 11


def test_larger_n():
    assert sum_primes(100) == 1060
    assert sum_primes(1000) == 76127
    assert sum_primes(10_000) == 5736396


def test_returns_an_int():
    assert isinstance(sum_primes(10), int)
