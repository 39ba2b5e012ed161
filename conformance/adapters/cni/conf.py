"""The network configuration ``kubemc conform cni`` hands a plugin, and where
the plugin binaries are.

What the CNI specification (SPEC.md, spec-v1.0.0, "Section 1: Network
configuration format") fixes and this module checks before a run:

* a configuration *list* has ``cniVersion``, ``name`` and ``plugins`` (a
  non-empty list of plugin configurations, each with a ``type``: "Runtimes
  must use the type of network … as the name of the executable to invoke");
  a single plugin configuration (``type`` at the top) is read as a list of
  one, as libcni's ``ConfListFromConf`` does;
* ``disableCheck`` (true: the runtime must not call CHECK) and, from 1.1,
  ``disableGC``.

What the runner adds, because one configuration serves several simulated
nodes: in every plugin whose ``ipam.type`` is ``host-local``, ``ranges`` is
replaced by the node's podCIDR (gateway: its first address) and ``dataDir``
by the run's own store directory for that node — what a node's CNI config
file holds in a real cluster (kubenet and most templates fill the podCIDR
in per node). Nothing else of the user's configuration is changed.
"""

from __future__ import annotations

import copy
import json
import os
import shutil

from kubemc.checker.errors import BadInput, MissingEnvironment
from kubemc.model.network import addr

DEFAULT_CNI_PATH = ("/usr/lib/cni", "/opt/cni/bin")
INSTALL_HINT = "apt-get install containernetworking-plugins"
VERSIONS_WITH_STATUS_GC = ("1.1.0",)
KNOWN_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


def default_conflist(ip_masq: bool = False) -> dict:
    """The seeds' network (seeds/004: bridge ``cni0``, host-local IPAM) with
    per-node podCIDRs instead of one /16, and ``ipMasq`` off: with per-node
    ranges, ipMasq would NAT pod traffic to other nodes (the model's mutant
    ``bridge_ipmasq``)."""
    return {"cniVersion": "1.0.0", "name": "kubemc-cni", "plugins": [
        {"type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": ip_masq,
         "ipam": {"type": "host-local", "routes": [{"dst": "0.0.0.0/0"}]}},
    ]}


def load(path: str) -> dict:
    """A ``--conf`` file as a configuration list; BadInput naming the problem."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except FileNotFoundError:
        raise BadInput(f"--conf {path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"--conf {path}: is a directory; give a .conf or .conflist file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--conf {path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    except json.JSONDecodeError as exc:
        raise BadInput(f"--conf {path}: not JSON (line {exc.lineno}: {exc.msg})") from None
    return normalize(doc, f"--conf {path}")


def normalize(doc, where: str = "configuration") -> dict:
    if not isinstance(doc, dict):
        raise BadInput(f"{where}: a network configuration is a JSON object")
    if "plugins" not in doc and "type" in doc:
        single = {k: v for k, v in doc.items() if k not in ("cniVersion", "name")}
        doc = {"cniVersion": doc.get("cniVersion"), "name": doc.get("name"), "plugins": [single]}
    for key in ("cniVersion", "name"):
        if not isinstance(doc.get(key), str) or not doc.get(key):
            raise BadInput(f"{where}: {key!r} must be a non-empty string (CNI spec, section 1)")
    if doc["cniVersion"] not in KNOWN_VERSIONS:
        raise BadInput(f"{where}: cniVersion {doc['cniVersion']!r} is none of the spec's "
                       f"versions ({', '.join(KNOWN_VERSIONS)})")
    plugins = doc.get("plugins")
    if not isinstance(plugins, list) or not plugins:
        raise BadInput(f"{where}: 'plugins' must be a non-empty list (CNI spec, section 1)")
    for i, p in enumerate(plugins):
        if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
            raise BadInput(f"{where}: plugins[{i}] needs a 'type' (the plugin's executable name)")
        if "/" in p["type"]:
            raise BadInput(f"{where}: plugins[{i}].type {p['type']!r} is an executable name, "
                           "not a path (put its directory in CNI_PATH or use --plugin PATH)")
    return doc


def with_plugin(conflist: dict, plugin: str) -> tuple[dict, str | None]:
    """``--plugin NAME|PATH`` replaces the first plugin's type; a PATH also
    gives a directory to search first. Returns (conflist, extra dir)."""
    out = copy.deepcopy(conflist)
    extra = None
    if "/" in plugin:
        if not os.path.isfile(plugin) or not os.access(plugin, os.X_OK):
            raise BadInput(f"--plugin {plugin}: not an executable file")
        extra = os.path.dirname(os.path.abspath(plugin))
        plugin = os.path.basename(plugin)
    out["plugins"][0]["type"] = plugin
    return out, extra


def search_path(extra: str | None = None) -> list[str]:
    env = os.environ.get("CNI_PATH")
    dirs = env.split(os.pathsep) if env else list(DEFAULT_CNI_PATH)
    return ([extra] if extra else []) + [d for d in dirs if d]


def resolve(conflist: dict, dirs: list[str], explicit: bool) -> None:
    """Every ``type`` (and host-local, the IPAM the runner reads) must exist
    in ``dirs``: exit 3 with the install hint for the standard plugins,
    exit 2 for a name the user gave."""
    wanted = [p["type"] for p in conflist["plugins"]]
    wanted += [p["ipam"]["type"] for p in conflist["plugins"]
               if isinstance(p.get("ipam"), dict) and isinstance(p["ipam"].get("type"), str)]
    for name in wanted:
        if not any(os.access(os.path.join(d, name), os.X_OK) for d in dirs):
            where = ":".join(dirs)
            if explicit and name == conflist["plugins"][0]["type"]:
                raise BadInput(f"--plugin {name}: no executable of that name in {where} "
                               "(give a path, or set CNI_PATH)")
            raise MissingEnvironment(f"the CNI plugin {name!r} is not installed in {where}: "
                                     f"{INSTALL_HINT} (or set CNI_PATH)")
    if shutil.which("iptables") is None and any(p.get("ipMasq") for p in conflist["plugins"]):
        raise MissingEnvironment("ipMasq needs iptables: apt-get install iptables")


def uses_host_local(conflist: dict) -> bool:
    return any(isinstance(p.get("ipam"), dict) and p["ipam"].get("type") == "host-local"
               for p in conflist["plugins"])


def for_node(conflist: dict, pod_cidr, store_dir: str) -> dict:
    """The conflist node ``n`` uses: its podCIDR and store for host-local."""
    out = copy.deepcopy(conflist)
    for p in out["plugins"]:
        ipam = p.get("ipam")
        if isinstance(ipam, dict) and ipam.get("type") == "host-local":
            for k in ("subnet", "rangeStart", "rangeEnd", "gateway"):
                ipam.pop(k, None)
            ipam["ranges"] = [[{"subnet": addr.show_cidr(pod_cidr),
                                "gateway": addr.show(pod_cidr[0] + 1)}]]
            ipam["dataDir"] = store_dir
    return out


def declares_status_gc(conflist: dict) -> bool:
    return conflist["cniVersion"] in VERSIONS_WITH_STATUS_GC
