"""The host-local IPAM plugin's allocator, as pure functions over its store.

What it does, from the plugin's documentation (cni.dev/plugins/current/ipam/
host-local) and the CNI specification (github.com/containernetworking/cni,
SPEC.md):

* addresses come from a range: ``subnet`` with optional ``rangeStart`` /
  ``rangeEnd`` (default: the subnet's first and last usable address) and a
  ``gateway`` that is never handed out;
* "The allocation strategy is loosely round-robin within each range set":
  the store remembers the last reserved address, and the next ADD tries the
  addresses after it in order, wrapping around to ``rangeStart``, taking the
  first one not already reserved;
* one reservation per (container ID, interface name): the store records the
  owner of every address; SPEC.md says a runtime should not call ADD twice
  for the same (CNI_CONTAINERID, CNI_IFNAME) without an intervening DEL —
  the allocator answers such a second ADD with an error;
* DEL releases what the (container, interface) holds; SPEC.md: "Plugins
  should generally complete a DEL action without error even if some
  resources are missing. For example, an IPAM plugin should generally
  release an IP allocation and return success even if the container network
  namespace no longer exists" — DEL of an unknown container succeeds and
  changes nothing.

A store is ``(last_reserved, reservations)`` with ``reservations`` a sorted
tuple of ``(ip, container, ifname)``; ``last_reserved`` is 0 before the
first allocation. A range is :class:`Range`.
"""

from __future__ import annotations

import attrs

from kubemc.model.network.addr import Cidr, contains

EMPTY = (0, ())


@attrs.frozen(slots=True)
class Range:
    subnet: Cidr
    start: int
    end: int
    gateway: int

    def __attrs_post_init__(self):
        if not (contains(self.subnet, self.start) and contains(self.subnet, self.end)
                and self.start <= self.end):
            raise ValueError("rangeStart and rangeEnd must lie in the subnet, in order")


def candidates(rng: Range, last: int, *, wrap: bool = True):
    """Addresses in allocation order: after ``last`` (when it lies in the
    range), wrapping to ``rangeStart``, skipping the gateway. ``wrap=False``
    is the seeded bug's order: it stops at ``rangeEnd``."""
    size = rng.end - rng.start + 1
    first = last + 1 if rng.start <= last <= rng.end else rng.start
    for k in range(size if wrap else rng.end - first + 1):
        a = rng.start + (first - rng.start + k) % size
        if a != rng.gateway:
            yield a


def allocate(store, rng: Range, container: int, ifname: str, *, check_held: bool = True,
             round_robin: bool = True, wrap: bool = True):
    """ADD: ``(store, ip)`` on success, ``(store, error)`` with an unchanged
    store on failure. ``check_held=False`` is the seeded bug that hands out
    the next address without looking at the store; ``round_robin=False`` the
    one that always searches from rangeStart (first fit), handing a just
    released address straight out again; ``wrap=False`` the one that searches
    only from the last reserved address to rangeEnd, refusing an ADD while
    addresses before the last reserved one are free."""
    last, reservations = store
    if any(c == container and i == ifname for _, c, i in reservations):
        return store, "already has an address for this container and interface"
    held = {a for a, _, _ in reservations}
    for a in candidates(rng, last if round_robin else 0, wrap=wrap):
        if a not in held or not check_held:
            return (a, tuple(sorted(reservations + ((a, container, ifname),)))), a
    return store, "no free address in the range"


def release(store, container: int, ifname: str, *, move_last: bool = False):
    """DEL: drop the (container, interface) reservation; idempotent. The last
    reserved address is left alone: it is written on allocation only.
    ``move_last=True`` is the seeded bug that records the released address
    as the last reserved one instead."""
    last, reservations = store
    kept = tuple(r for r in reservations if not (r[1] == container and r[2] == ifname))
    if move_last:
        last = next((a for a, c, i in reservations if c == container and i == ifname), last)
    return (last, kept)


def holder(store, address: int):
    return next(((c, i) for a, c, i in store[1] if a == address), None)
