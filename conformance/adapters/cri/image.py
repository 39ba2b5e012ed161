"""The one image a CRI run uses, built locally: busybox from Debian's
``busybox-static`` in an OCI image-layout archive, imported into containerd.

Why local: a conformance run must not reach a registry. The same image is
the sandbox ("pause") image and the workload image: its entrypoint idles
until SIGTERM and then exits 0 (what a pause container does), and a
workload container gets a ``/bin/sh -c`` script of its own.

The archive follows the OCI image-layout and image specs (``oci-layout``,
``index.json``, ``blobs/sha256/…``; a manifest, a config whose ``diff_ids``
name the uncompressed layer, one uncompressed tar layer). The
``io.containerd.image.name`` annotation tells ``ctr images import`` what
name to give it. Everything is deterministic (fixed mtimes, sorted entries):
the same busybox gives the same digests.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

from kubemc.checker.errors import MissingEnvironment

IMAGE = "kubemc.local/busybox:1"
BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
#: applets the workloads call, as symlinks to busybox
APPLETS = ("sh", "sleep", "true", "false", "kill", "cat", "echo")
#: the pause behaviour: idle, exit 0 on SIGTERM
PAUSE = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 1 & wait $!; done"]


def find_busybox() -> str:
    """A statically linked busybox (it runs in an empty root filesystem)."""
    for p in BUSYBOX_PATHS:
        if os.path.isfile(p) and os.access(p, os.X_OK):
            if _static(p):
                return p
    raise MissingEnvironment("a statically linked busybox is missing: install it with "
                             "`apt-get install busybox-static`")


def _static(path: str) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header: it needs
    no dynamic loader from the (empty) root filesystem it runs in."""
    import struct
    with open(path, "rb") as fh:
        head = fh.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        fh.seek(phoff)
        table = fh.read(phentsize * phnum)
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != 3 for i in range(phnum))


def _digest(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _add(tf: tarfile.TarFile, name: str, data: bytes | None = None, *, kind=tarfile.REGTYPE,
         mode: int = 0o644, link: str = "") -> None:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime, ti.linkname = kind, mode, 0, link
    ti.uname = ti.gname = "root"
    if data is not None:
        ti.size = len(data)
    tf.addfile(ti, io.BytesIO(data) if data is not None else None)


def layer(busybox: str) -> bytes:
    """The root filesystem as one uncompressed tar layer."""
    buf = io.BytesIO()
    with open(busybox, "rb") as fh:
        binary = fh.read()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ("bin", "dev", "etc", "proc", "sys", "tmp"):
            _add(tf, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tf, "bin/busybox", binary, mode=0o755)
        for applet in APPLETS:
            _add(tf, f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, link="busybox")
        _add(tf, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\n")
        _add(tf, "etc/group", b"root:x:0:\n")
    return buf.getvalue()


def archive(busybox: str | None = None, name: str = IMAGE) -> bytes:
    """The OCI image-layout archive (a tar) holding ``name``."""
    lay = layer(busybox or find_busybox())
    config = json.dumps({
        "architecture": "amd64" if os.uname().machine == "x86_64" else os.uname().machine,
        "os": "linux",
        "config": {"Entrypoint": PAUSE, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [_digest(lay)]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": _digest(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": _digest(lay), "size": len(lay)}],
    }, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": _digest(manifest), "size": len(manifest),
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": name}}],
    }, sort_keys=True).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tf:
        _add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        _add(tf, "index.json", index)
        _add(tf, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tf, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for blob in (lay, config, manifest):
            _add(tf, f"blobs/sha256/{_digest(blob)[7:]}", blob)
    return out.getvalue()


def import_image(address: str, path: str, namespace: str = "k8s.io", timeout: float = 120) -> None:
    """``ctr images import`` the archive at ``path`` into the containerd at
    ``address`` (a socket path), in the CRI plugin's namespace."""
    ctr = shutil.which("ctr")
    if ctr is None:
        raise MissingEnvironment("the `ctr` client is missing: install it with `apt-get install containerd`")
    proc = subprocess.run([ctr, "--address", address, "-n", namespace, "images", "import",
                           "--all-platforms", path], capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ctr images import: {(proc.stderr or proc.stdout).strip()}")


def main(argv=None) -> int:
    """``python3 -m conformance.adapters.cri.image unix:///PATH``: build the image
    and import it into the containerd listening there (for ``--endpoint``)."""
    import sys
    import tempfile

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].startswith("unix:///"):
        print("usage: python3 -m kubemc.conformance.adapters.cri.image "
              "unix:///PATH/containerd.sock", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kmc-cri-image-") as d:
        path = os.path.join(d, "image.tar")
        with open(path, "wb") as fh:
            fh.write(archive())
        import_image(args[0][len("unix://"):], path)
    print(f"imported {IMAGE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
