"""Kubernetes resource quantities (``1500m``, ``2Gi``, ``1e3``) as exact numbers.

Why hand-written: the parsers on the package index are the official
``kubernetes`` client's (a heavy dependency tree for one function, and it
accepts what the grammar does not: ``Infinity``, ``1_000``, a ``K`` suffix)
and lightkube's (pulls an HTTP stack; no ``n``/``u`` handling, and anything
after the number is matched loosely). The grammar is short and documented,
so this follows it exactly — k8s.io/apimachinery/pkg/api/resource, type
``Quantity``::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= <number> | <sign><number>
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <sign>            ::= "+" | "-"
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

The apimachinery parser also accepts ``n`` and ``u`` (nano, micro) though
the comment's grammar omits them; they are accepted here too, since
``kubectl`` prints what the apiserver stored. Values are exact fractions;
the documented rounding ("0.1m will rounded up to 1m") is :func:`milli`'s
and :func:`whole`'s: up, to the unit asked for. ``E`` alone is exa (``1E``),
while ``1E3`` is an exponent, as in apimachinery.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_QUANTITY = re.compile(rf"({_NUMBER})(Ki|Mi|Gi|Ti|Pi|Ei|[eE]({_NUMBER})|[numkMGTPE]?)")
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
#: exponents beyond this cannot be a real resource and would make huge integers
_MAX_EXPONENT = 30


class QuantityError(ValueError):
    """Not a quantity: the message says why, in one line."""


def parse(text) -> Fraction:
    """The exact value of a quantity string (JSON numbers are accepted as
    the apiserver does when a manifest gives ``cpu: 2``)."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise QuantityError(f"{text!r} is not a quantity (expected a string such as '500m')")
    if isinstance(text, (int, float)):
        if isinstance(text, float) and not math.isfinite(text):
            raise QuantityError(f"{text!r} is not a finite quantity")
        return Fraction(text)
    m = _QUANTITY.fullmatch(text)
    if not m:
        raise QuantityError(f"{text!r} is not a Kubernetes quantity "
                            "(a number with an optional suffix such as m, Ki, Mi, Gi, k, M, G, e3)")
    value, suffix, exponent = Fraction(_plain(m.group(1))), m.group(2), m.group(3)
    if suffix in _BINARY:
        return value * (2 ** _BINARY[suffix])
    if exponent is not None:
        e = Fraction(_plain(exponent))
        if e.denominator != 1:
            raise QuantityError(f"{text!r}: the exponent must be a whole number")
        if abs(e) > _MAX_EXPONENT:
            raise QuantityError(f"{text!r}: exponent out of range")
        return value * Fraction(10) ** int(e)
    return value * Fraction(10) ** _DECIMAL[suffix]


def _plain(number: str) -> str:
    """Fraction() reads '1.' and '.5' but not '+.5'; normalise the sign."""
    sign = "-" if number.startswith("-") else ""
    body = number.lstrip("+-")
    if body.endswith("."):
        body += "0"
    if body.startswith("."):
        body = "0" + body
    return sign + body


def milli(text) -> int:
    """In thousandths, rounded up (cpu in millicores)."""
    return math.ceil(parse(text) * 1000)


def whole(text) -> int:
    """In units, rounded up (memory in bytes, a pod count)."""
    return math.ceil(parse(text))
