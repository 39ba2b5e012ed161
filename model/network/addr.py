"""IPv4 addresses and CIDR blocks as plain ints.

Why ints: the forwarding function and the Z3 encoding both reason about
addresses as 32-bit numbers (a prefix match is ``ip & mask == base``), and a
generated cluster at Kubernetes' documented limits holds 150,000 pod
addresses — ints cost nothing to hash, compare or turn into a bit-vector.
A CIDR is the pair ``(base, prefix_length)`` with the host bits of ``base``
zero (RFC 4632 §3.1).
"""

from __future__ import annotations

Cidr = tuple  # (base: int, prefix_length: int)

ALL_ONES = 0xFFFFFFFF


def ip(text: str) -> int:
    """``"10.22.0.1"`` -> int; a malformed address raises ValueError."""
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        raise ValueError(f"not an IPv4 address: {text!r}")
    a, b, c, d = (int(p) for p in parts)
    return (a << 24) | (b << 16) | (c << 8) | d


def show(address: int) -> str:
    return ".".join(str((address >> s) & 255) for s in (24, 16, 8, 0))


def mask(prefix_length: int) -> int:
    return (ALL_ONES << (32 - prefix_length)) & ALL_ONES if prefix_length else 0


def cidr(text: str) -> Cidr:
    """``"10.22.0.0/16"`` -> ``(base, 16)``; host bits must be zero."""
    address, _, length = text.partition("/")
    if not length.isdigit() or int(length) > 32:
        raise ValueError(f"not a CIDR: {text!r}")
    base, plen = ip(address), int(length)
    if base & ~mask(plen) & ALL_ONES:
        raise ValueError(f"{text!r} has host bits set")
    return (base, plen)


def show_cidr(block: Cidr) -> str:
    return f"{show(block[0])}/{block[1]}"


def contains(block: Cidr, address: int) -> bool:
    return (address & mask(block[1])) == block[0]


def overlaps(a: Cidr, b: Cidr) -> bool:
    """Two blocks overlap iff the shorter prefix contains the other's base."""
    shorter = min(a[1], b[1])
    return (a[0] & mask(shorter)) == (b[0] & mask(shorter))


def subnet(block: Cidr, new_length: int, index: int) -> Cidr:
    """The ``index``-th block of length ``new_length`` inside ``block`` —
    how a node IPAM controller carves per-node podCIDRs out of the cluster
    CIDR (kube-controller-manager ``--node-cidr-mask-size``, default 24)."""
    count = 1 << (new_length - block[1])
    if not 0 <= index < count:
        raise ValueError(f"{show_cidr(block)} has {count} /{new_length} subnets, not {index + 1}")
    return (block[0] + (index << (32 - new_length)), new_length)


def last(block: Cidr) -> int:
    return block[0] | (~mask(block[1]) & ALL_ONES)
