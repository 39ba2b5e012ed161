"""Known-bad CNI plugins: wrappers around a real plugin, each breaking one
thing the spec asks, for the tests (and anyone checking that ``kubemc
conform cni`` catches them).

=============  ===============================================================
mode           what the wrapper does                 check that must fail
=============  ===============================================================
``outside``    ADD returns an address moved out of   ``address-in-podcidr``
               the node's subnet (10.99.x.y)
``del-twice``  a second DEL of the same container    ``del-idempotent``
               fails (error 100)
``leak-veth``  DEL runs the real plugin without      ``interfaces-removed``
               ``CNI_NETNS`` (allowed by the spec
               when the namespace is gone), so the
               veth pair is never deleted
``no-network`` for pods 3, 4 and 5 (by               ``address-assigned``
               ``K8S_POD_NAME`` in ``CNI_ARGS``) ADD (and ``reachability``)
               does nothing and answers success
               with no interface and no address;
               CHECK and DEL of them do nothing and
               succeed; other pods get the real
               plugin (an independent audit found
               this passing)
=============  ===============================================================

A wrapper is a small POSIX shell script (a shell starts in a millisecond; a
Python wrapper would triple the cost of every call): it finds the real plugin
in ``CNI_PATH``, as the spec says a delegated plugin is found, and gives it
the same stdin and environment but for what its mode breaks.
"""

from __future__ import annotations

import os
import shlex
import stat

MODES = ("outside", "del-twice", "leak-veth", "no-network")
EXPECTED_CHECK = {"outside": "address-in-podcidr", "del-twice": "del-idempotent",
                  "leak-veth": "interfaces-removed", "no-network": "address-assigned"}
NO_NETWORK_PODS = (3, 4, 5)


_FIND = """real=""
IFS=:
for d in $CNI_PATH; do [ -x "$d/bridge" ] && real="$d/bridge" && break; done
unset IFS
[ -n "$real" ] || { echo '{"code": 100, "msg": "no bridge plugin in CNI_PATH"}'; exit 1; }
"""

_BODY = {
    # the same host part in another /16: 10.22.1.5/24 -> 10.99.1.5/24
    "outside": """if [ "$CNI_COMMAND" = ADD ]; then
  out=$("$real") || { rc=$?; printf '%s' "$out"; exit $rc; }
  printf '%s' "$out" | sed -E 's/("address": *"[0-9]+)\\.[0-9]+\\./\\1.99./'
  exit 0
fi
exec "$real"
""",
    "del-twice": """if [ "$CNI_COMMAND" = DEL ]; then
  marker="$STATE/$(printf '%s' "$CNI_CONTAINERID" | tr -c 'A-Za-z0-9_.-' _)"
  if [ -e "$marker" ]; then
    echo '{"code": 100, "msg": "container already deleted"}'
    exit 1
  fi
  : > "$marker"
fi
exec "$real"
""",
    "leak-veth": """[ "$CNI_COMMAND" = DEL ] && CNI_NETNS= && export CNI_NETNS
exec "$real"
""",
    # CNI_ARGS ends "...;K8S_POD_NAME=pod-N" (the runner's, as the Kubernetes runtimes pass it)
    "no-network": """case ";$CNI_ARGS;" in
  *";K8S_POD_NAME=pod-"[345]";"*)
    case "$CNI_COMMAND" in
      ADD)
        ver=$(grep -o '"cniVersion": *"[^"]*"' | head -n 1 | sed 's/.*"\\([^"]*\\)"$/\\1/')
        printf '{"cniVersion": "%s", "interfaces": [], "ips": [], "dns": {}}' "${ver:-1.0.0}"
        exit 0;;
      CHECK|DEL) exit 0;;
    esac;;
esac
exec "$real"
""",
}


def write_wrapper(directory: str, mode: str) -> str:
    """Create ``directory/kcni-MODE`` (and its state directory); return its path."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    path = os.path.join(directory, f"kcni-{mode}")
    state = os.path.join(directory, f"kcni-{mode}.state")
    os.makedirs(state, exist_ok=True)
    with open(path, "x", encoding="utf-8") as fh:
        fh.write(f"#!/bin/sh\n# kubemc known-bad CNI plugin: {mode}\nSTATE={shlex.quote(state)}\n")
        fh.write(_FIND + _BODY[mode])
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
