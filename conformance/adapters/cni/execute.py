"""Executing CNI plugins exactly as the CNI specification prescribes.

From SPEC.md (containernetworking/cni, spec-v1.0.0; 1.1.0 adds STATUS and GC):

* "Section 2: Execution Protocol": the runtime passes ``CNI_COMMAND``
  (ADD, DEL, CHECK, VERSION; 1.1: STATUS, GC), ``CNI_CONTAINERID``,
  ``CNI_NETNS``, ``CNI_IFNAME``, ``CNI_ARGS`` and ``CNI_PATH`` in the
  environment and the configuration on stdin; the plugin answers on stdout —
  a result on success (exit 0), an error object otherwise.
* "Section 3: Execution of Network Configurations": ADD runs the list's
  plugins in order, each given the previous plugin's result as
  ``prevResult``, halting at the first error; DEL runs them in *reverse*
  order, each given the final ADD result; CHECK runs them in order with the
  final ADD result, and is not called at all when ``disableCheck`` is true.
  The runtime inserts ``cniVersion``, ``name`` and ``prevResult`` into each
  plugin's configuration and removes ``capabilities``.
* VERSION takes ``{"cniVersion": …}`` on stdin and no other variable.

Each plugin execution is one :class:`Call` (what went in, what came out);
a chain's ADD / DEL / CHECK is one :class:`Attempt` of several calls. The
checks in :mod:`conformance.validate` judge them; nothing here decides
whether an answer is right.

Plugins run in a node's namespace: the calling thread enters it
(:func:`conformance.adapters.cni.netns.entered`) and forks the plugin there.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time

import attrs

from kubemc.conformance.adapters.cni.netns import entered

PLUGIN_TIMEOUT = 30.0
STDERR_KEEP = 2000


@attrs.frozen(slots=True)
class Call:
    """One execution of one plugin binary."""

    command: str
    plugin: str
    container: str
    netns: str
    ifname: str
    stdin: dict
    exit_code: int | None          # None: killed after the timeout
    stdout: str
    stderr: str
    seconds: float

    @property
    def parsed(self):
        """The stdout JSON, or None when stdout is empty or not JSON."""
        try:
            return json.loads(self.stdout) if self.stdout.strip() else None
        except json.JSONDecodeError:
            return None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def to_json(self) -> dict:
        return {"command": self.command, "plugin": self.plugin, "container": self.container,
                "netns": self.netns, "ifname": self.ifname, "exit_code": self.exit_code,
                "stdout": self.stdout[:4000], "stderr": self.stderr[-STDERR_KEEP:],
                "seconds": round(self.seconds, 4)}


@attrs.frozen(slots=True)
class Attempt:
    """A chain's ADD, DEL or CHECK (or a VERSION / STATUS / GC) as the runtime sees it."""

    command: str
    container: str
    calls: tuple
    result: dict | None            # the final result (ADD), None otherwise

    @property
    def ok(self) -> bool:
        return bool(self.calls) and all(c.ok for c in self.calls)

    @property
    def failed(self) -> Call | None:
        return next((c for c in self.calls if not c.ok), None)

    def error_text(self) -> str:
        c = self.failed
        if c is None:
            return ""
        doc = c.parsed
        if isinstance(doc, dict) and "code" in doc:
            return f"{c.plugin} {c.command}: error {doc.get('code')}: {doc.get('msg')} {doc.get('details') or ''}".strip()
        return f"{c.plugin} {c.command}: exit {c.exit_code}: {(c.stdout or c.stderr).strip()[:300]}"


class Executor:
    """Runs a configuration list's plugins for one node."""

    def __init__(self, conflist: dict, cni_path: list[str], node_netns: str,
                 extra_env: dict | None = None):
        self.conflist = conflist
        self.cni_path = list(cni_path)
        self.node_netns = node_netns
        self.extra_env = dict(extra_env or {})

    def find(self, plugin_type: str) -> str:
        for d in self.cni_path:
            p = os.path.join(d, plugin_type)
            if os.access(p, os.X_OK):
                return p
        raise FileNotFoundError(f"no CNI plugin {plugin_type!r} in {':'.join(self.cni_path)}")

    def _env(self, command: str, container: str = "", netns: str = "", ifname: str = "",
             args: str = "") -> dict:
        env = {"CNI_COMMAND": command, "CNI_PATH": os.pathsep.join(self.cni_path),
               "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        if command not in ("VERSION", "STATUS", "GC"):
            env.update(CNI_CONTAINERID=container, CNI_NETNS=netns, CNI_IFNAME=ifname,
                       CNI_ARGS=args)
        env.update(self.extra_env)
        return env

    def derive(self, plugin: dict, prev: dict | None) -> dict:
        """Section 3, "Deriving execution configuration from plugin configuration"."""
        conf = {k: copy.deepcopy(v) for k, v in plugin.items() if k != "capabilities"}
        conf["cniVersion"] = self.conflist["cniVersion"]
        conf["name"] = self.conflist["name"]
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    def call(self, command: str, plugin_type: str, stdin: dict, container: str = "",
             netns: str = "", ifname: str = "", args: str = "") -> Call:
        exe = self.find(plugin_type)
        env = self._env(command, container, netns, ifname, args)
        data = json.dumps(stdin).encode()
        t0 = time.perf_counter()
        with entered(self.node_netns):
            proc = subprocess.Popen([exe], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, cwd="/")
        try:
            out, err = proc.communicate(data, timeout=PLUGIN_TIMEOUT)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            code = None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        return Call(command, plugin_type, container, netns, ifname, stdin, code,
                    out.decode(errors="replace"), err.decode(errors="replace")[-STDERR_KEEP:],
                    time.perf_counter() - t0)

    # -- the chain operations of Section 3 ------------------------------------------
    def add(self, container: str, netns: str, ifname: str, args: str = "") -> Attempt:
        calls, prev = [], None
        for plugin in self.conflist["plugins"]:
            c = self.call("ADD", plugin["type"], self.derive(plugin, prev), container, netns,
                          ifname, args)
            calls.append(c)
            if not c.ok:
                return Attempt("ADD", container, tuple(calls), None)
            prev = c.parsed
        return Attempt("ADD", container, tuple(calls), prev)

    def delete(self, container: str, netns: str, ifname: str, prev: dict | None,
               args: str = "") -> Attempt:
        calls = []
        for plugin in reversed(self.conflist["plugins"]):
            c = self.call("DEL", plugin["type"], self.derive(plugin, prev), container, netns,
                          ifname, args)
            calls.append(c)
            if not c.ok:
                break
        return Attempt("DEL", container, tuple(calls), None)

    def check(self, container: str, netns: str, ifname: str, prev: dict,
              args: str = "") -> Attempt | None:
        if self.conflist.get("disableCheck") is True:
            return None
        calls = []
        for plugin in self.conflist["plugins"]:
            c = self.call("CHECK", plugin["type"], self.derive(plugin, prev), container, netns,
                          ifname, args)
            calls.append(c)
            if not c.ok:
                break
        return Attempt("CHECK", container, tuple(calls), None)

    def version(self, plugin_type: str) -> Attempt:
        c = self.call("VERSION", plugin_type, {"cniVersion": self.conflist["cniVersion"]})
        return Attempt("VERSION", "", (c,), None)

    def status(self) -> Attempt:
        """1.1 STATUS: every plugin of the list, configuration on stdin."""
        calls = [self.call("STATUS", p["type"], self.derive(p, None))
                 for p in self.conflist["plugins"]]
        return Attempt("STATUS", "", tuple(calls), None)

    def gc(self, valid: list[tuple[str, str]]) -> Attempt:
        """1.1 GC: each plugin with ``cni.dev/valid-attachments``."""
        calls = []
        for p in self.conflist["plugins"]:
            conf = self.derive(p, None)
            conf["cni.dev/valid-attachments"] = [{"containerID": c, "ifname": i} for c, i in valid]
            calls.append(self.call("GC", p["type"], conf))
        return Attempt("GC", "", tuple(calls), None)
