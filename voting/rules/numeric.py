"""Float helpers with proven rounding for the exact-by-certificate MES engine."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

EPS = 2.0**-52  # twice the unit roundoff of float64: a bound on the relative error of one operation
INF = math.inf


def fdown(x: Fraction) -> float:
    """The largest float not above x."""
    f = float(x)
    return math.nextafter(f, -INF) if Fraction(f) > x else f


def fup(x: Fraction) -> float:
    """The smallest float not below x."""
    f = float(x)
    return math.nextafter(f, INF) if Fraction(f) < x else f


def dot(a: np.ndarray, b: np.ndarray) -> int:
    """Exact integer dot product of two integer arrays."""
    if a.size == 0:
        return 0
    if int(a.max()) * int(b.max()) * a.size < 2**62:
        return int(np.dot(a, b))
    return int(sum(int(x) * int(y) for x, y in zip(a.tolist(), b.tolist(), strict=True)))


@dataclass
class Eval:
    """A float price per unit of utility, and which supporters pay all they have at that price."""

    r: float
    poor: np.ndarray
