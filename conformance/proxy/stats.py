"""Pearson's chi-square goodness-of-fit test, for the live run's question
"are these landing counts what the rules' probabilities predict?".

Why here and not scipy: scipy is not a dependency of kubemc, and the test
is a few lines — the statistic ``sum((O - E)^2 / E)`` and its p-value, the
upper tail of the chi-square distribution with k-1 degrees of freedom,
which is the regularized upper incomplete gamma function Q(k/2, x/2)
(Numerical Recipes §6.2: series for x < a+1, continued fraction beyond).
"""

from __future__ import annotations

import math


def _gammq(a: float, x: float) -> float:
    if x <= 0:
        return 1.0
    gln = math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(-x + a * math.log(x) - gln))
    b = x + 1 - a
    c = 1 / 1e-300
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = 1e-300 if abs(d) < 1e-300 else d
        c = b + an / c
        c = 1e-300 if abs(c) < 1e-300 else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return math.exp(-x + a * math.log(x) - gln) * h


def chi_square(observed, expected_probabilities) -> tuple[float, float, int]:
    """(statistic, p-value, degrees of freedom) of ``observed`` counts against
    probabilities (summing to 1). Cells with probability 0 must be empty
    (else the p-value is 0)."""
    n = sum(observed)
    stat, cells = 0.0, 0
    for o, p in zip(observed, expected_probabilities):
        if p <= 0:
            if o:
                return math.inf, 0.0, 0
            continue
        e = n * p
        stat += (o - e) ** 2 / e
        cells += 1
    dof = cells - 1
    if dof <= 0:
        return stat, 1.0, 0
    return stat, _gammq(dof / 2, stat / 2), dof
