"""The subset of the CRI v1 runtime service that kubemc drives, as protobuf
descriptors built here in Python.

Why built, not generated: the project compiles nothing at install time and
copies no ``.proto`` file from elsewhere. The messages below are written from
the published CRI API, ``k8s.io/cri-api/pkg/apis/runtime/v1/api.proto``
(package ``runtime.v1``): every field keeps the name and the *field number*
that file gives it — on the wire only the numbers count, so a runtime that
speaks the full API reads these messages and we read its answers (fields we
do not declare are skipped as unknown fields, as proto3 requires). Only the
fields the workload sets or the checker reads are declared.

Use::

    from kubemc.conformance.adapters.cri import proto as pb
    req = pb.new("RunPodSandboxRequest", config={"metadata": {"name": "p", "uid": "u"}})
    stub = pb.RuntimeStub(channel)
    resp = stub.call("RunPodSandbox", req, timeout=10)
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.json_format import MessageToDict, ParseDict

PACKAGE = "runtime.v1"
SERVICE = "runtime.v1.RuntimeService"

F = descriptor_pb2.FieldDescriptorProto
_SCALARS = {"string": F.TYPE_STRING, "bool": F.TYPE_BOOL, "int64": F.TYPE_INT64,
            "int32": F.TYPE_INT32, "uint32": F.TYPE_UINT32, "uint64": F.TYPE_UINT64}

#: enums of api.proto: name -> [(value name, number)]
ENUMS = {
    "NamespaceMode": [("POD", 0), ("CONTAINER", 1), ("NODE", 2), ("TARGET", 3)],
    "PodSandboxState": [("SANDBOX_READY", 0), ("SANDBOX_NOTREADY", 1)],
    "ContainerState": [("CONTAINER_CREATED", 0), ("CONTAINER_RUNNING", 1),
                       ("CONTAINER_EXITED", 2), ("CONTAINER_UNKNOWN", 3)],
}

#: messages of api.proto: name -> [(field, number, type, "repeated"|"map"|"")];
#: a type is a scalar above, an enum or a message of this table
MESSAGES = {
    "VersionRequest": [("version", 1, "string", "")],
    "VersionResponse": [("version", 1, "string", ""), ("runtime_name", 2, "string", ""),
                        ("runtime_version", 3, "string", ""), ("runtime_api_version", 4, "string", "")],
    "NamespaceOption": [("network", 1, "NamespaceMode", ""), ("pid", 2, "NamespaceMode", ""),
                        ("ipc", 3, "NamespaceMode", ""), ("target_id", 4, "string", "")],
    "LinuxSandboxSecurityContext": [("namespace_options", 1, "NamespaceOption", "")],
    "LinuxPodSandboxConfig": [("cgroup_parent", 1, "string", ""),
                              ("security_context", 2, "LinuxSandboxSecurityContext", "")],
    "PodSandboxMetadata": [("name", 1, "string", ""), ("uid", 2, "string", ""),
                           ("namespace", 3, "string", ""), ("attempt", 4, "uint32", "")],
    "PodSandboxConfig": [("metadata", 1, "PodSandboxMetadata", ""), ("hostname", 2, "string", ""),
                         ("log_directory", 3, "string", ""), ("labels", 6, "string", "map"),
                         ("annotations", 7, "string", "map"), ("linux", 8, "LinuxPodSandboxConfig", "")],
    "RunPodSandboxRequest": [("config", 1, "PodSandboxConfig", ""), ("runtime_handler", 2, "string", "")],
    "RunPodSandboxResponse": [("pod_sandbox_id", 1, "string", "")],
    "StopPodSandboxRequest": [("pod_sandbox_id", 1, "string", "")],
    "StopPodSandboxResponse": [],
    "RemovePodSandboxRequest": [("pod_sandbox_id", 1, "string", "")],
    "RemovePodSandboxResponse": [],
    "PodSandboxStatusRequest": [("pod_sandbox_id", 1, "string", ""), ("verbose", 2, "bool", "")],
    "PodSandboxStatus": [("id", 1, "string", ""), ("metadata", 2, "PodSandboxMetadata", ""),
                         ("state", 3, "PodSandboxState", ""), ("created_at", 4, "int64", ""),
                         ("labels", 7, "string", "map"), ("annotations", 8, "string", "map")],
    "PodSandboxStatusResponse": [("status", 1, "PodSandboxStatus", "")],
    "PodSandboxStateValue": [("state", 1, "PodSandboxState", "")],
    "PodSandboxFilter": [("id", 1, "string", ""), ("state", 2, "PodSandboxStateValue", ""),
                         ("label_selector", 3, "string", "map")],
    "ListPodSandboxRequest": [("filter", 1, "PodSandboxFilter", "")],
    "PodSandbox": [("id", 1, "string", ""), ("metadata", 2, "PodSandboxMetadata", ""),
                   ("state", 3, "PodSandboxState", ""), ("created_at", 4, "int64", ""),
                   ("labels", 5, "string", "map"), ("annotations", 6, "string", "map")],
    "ListPodSandboxResponse": [("items", 1, "PodSandbox", "repeated")],
    "ImageSpec": [("image", 1, "string", "")],
    "KeyValue": [("key", 1, "string", ""), ("value", 2, "string", "")],
    "ContainerMetadata": [("name", 1, "string", ""), ("attempt", 2, "uint32", "")],
    "ContainerConfig": [("metadata", 1, "ContainerMetadata", ""), ("image", 2, "ImageSpec", ""),
                        ("command", 3, "string", "repeated"), ("args", 4, "string", "repeated"),
                        ("working_dir", 5, "string", ""), ("envs", 6, "KeyValue", "repeated"),
                        ("labels", 9, "string", "map"), ("annotations", 10, "string", "map"),
                        ("log_path", 11, "string", "")],
    "CreateContainerRequest": [("pod_sandbox_id", 1, "string", ""), ("config", 2, "ContainerConfig", ""),
                               ("sandbox_config", 3, "PodSandboxConfig", "")],
    "CreateContainerResponse": [("container_id", 1, "string", "")],
    "StartContainerRequest": [("container_id", 1, "string", "")],
    "StartContainerResponse": [],
    "StopContainerRequest": [("container_id", 1, "string", ""), ("timeout", 2, "int64", "")],
    "StopContainerResponse": [],
    "RemoveContainerRequest": [("container_id", 1, "string", "")],
    "RemoveContainerResponse": [],
    "ContainerStateValue": [("state", 1, "ContainerState", "")],
    "ContainerFilter": [("id", 1, "string", ""), ("state", 2, "ContainerStateValue", ""),
                        ("pod_sandbox_id", 3, "string", ""), ("label_selector", 4, "string", "map")],
    "ListContainersRequest": [("filter", 1, "ContainerFilter", "")],
    "Container": [("id", 1, "string", ""), ("pod_sandbox_id", 2, "string", ""),
                  ("metadata", 3, "ContainerMetadata", ""), ("image", 4, "ImageSpec", ""),
                  ("image_ref", 5, "string", ""), ("state", 6, "ContainerState", ""),
                  ("created_at", 7, "int64", ""), ("labels", 8, "string", "map"),
                  ("annotations", 9, "string", "map")],
    "ListContainersResponse": [("containers", 1, "Container", "repeated")],
    "ContainerStatusRequest": [("container_id", 1, "string", ""), ("verbose", 2, "bool", "")],
    "ContainerStatus": [("id", 1, "string", ""), ("metadata", 2, "ContainerMetadata", ""),
                        ("state", 3, "ContainerState", ""), ("created_at", 4, "int64", ""),
                        ("started_at", 5, "int64", ""), ("finished_at", 6, "int64", ""),
                        ("exit_code", 7, "int32", ""), ("image", 8, "ImageSpec", ""),
                        ("image_ref", 9, "string", ""), ("reason", 10, "string", ""),
                        ("message", 11, "string", ""), ("labels", 12, "string", "map"),
                        ("annotations", 13, "string", "map"), ("log_path", 15, "string", "")],
    "ContainerStatusResponse": [("status", 1, "ContainerStatus", "")],
    # the image service: only whether the run's image is there
    "ImageStatusRequest": [("image", 1, "ImageSpec", ""), ("verbose", 2, "bool", "")],
    "Image": [("id", 1, "string", ""), ("repo_tags", 2, "string", "repeated"), ("size", 4, "uint64", "")],
    "ImageStatusResponse": [("image", 1, "Image", "")],
}

#: the runtime service's methods we call: name -> (request, response)
METHODS = {name: (f"{name}Request", f"{name}Response") for name in (
    "Version", "RunPodSandbox", "StopPodSandbox", "RemovePodSandbox", "PodSandboxStatus",
    "ListPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
    "ListContainers", "ContainerStatus")}


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="kubemc/cri_runtime_v1_subset.proto",
                                            package=PACKAGE, syntax="proto3")
    for name, values in ENUMS.items():
        e = fd.enum_type.add(name=name)
        for vname, num in values:
            e.value.add(name=vname, number=num)
    for name, fields in MESSAGES.items():
        m = fd.message_type.add(name=name)
        for fname, num, typ, kind in fields:
            f = m.field.add(name=fname, number=num, json_name=fname)
            if kind == "map":
                entry = m.nested_type.add(name="".join(p.title() for p in fname.split("_")) + "Entry")
                entry.options.map_entry = True
                entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                entry.field.add(name="value", number=2, type=_SCALARS[typ], label=F.LABEL_OPTIONAL)
                f.label, f.type = F.LABEL_REPEATED, F.TYPE_MESSAGE
                f.type_name = f".{PACKAGE}.{name}.{entry.name}"
                continue
            f.label = F.LABEL_REPEATED if kind == "repeated" else F.LABEL_OPTIONAL
            if typ in _SCALARS:
                f.type = _SCALARS[typ]
            elif typ in ENUMS:
                f.type, f.type_name = F.TYPE_ENUM, f".{PACKAGE}.{typ}"
            else:
                f.type, f.type_name = F.TYPE_MESSAGE, f".{PACKAGE}.{typ}"
    svc = fd.service.add(name="RuntimeService")
    for method, (req, resp) in METHODS.items():
        svc.method.add(name=method, input_type=f".{PACKAGE}.{req}", output_type=f".{PACKAGE}.{resp}")
    img = fd.service.add(name="ImageService")
    img.method.add(name="ImageStatus", input_type=f".{PACKAGE}.ImageStatusRequest",
                   output_type=f".{PACKAGE}.ImageStatusResponse")
    return fd


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
CLASSES = {name: message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{PACKAGE}.{name}"))
           for name in MESSAGES}


def new(name: str, **fields):
    """A message of type ``name`` from plain Python values (nested dicts for
    nested messages, enum value names as strings)."""
    return ParseDict(fields, CLASSES[name]())


def to_dict(msg) -> dict:
    """A message as plain JSON values, field names as in api.proto, enums by
    name, defaults included (an absent field reads as its proto3 default)."""
    return MessageToDict(msg, preserving_proto_field_name=True,
                         always_print_fields_with_no_presence=True)


def path(method: str) -> str:
    return f"/{SERVICE}/{method}"


def decode(method: str, which: str, data: bytes):
    """Parse the request (``which="request"``) or response bytes of ``method``."""
    req, resp = METHODS[method]
    return CLASSES[req if which == "request" else resp].FromString(data)


def image_status(channel, image: str, timeout: float) -> dict:
    """``ImageService.ImageStatus``: ``{"image": {...}}``, or no ``id`` when absent
    (api.proto: "If the image is not present, returns a response with
    ImageStatusResponse.Image set to nil")."""
    call = channel.unary_unary("/runtime.v1.ImageService/ImageStatus",
                               request_serializer=lambda msg: msg.SerializeToString(),
                               response_deserializer=CLASSES["ImageStatusResponse"].FromString)
    return to_dict(call(new("ImageStatusRequest", image={"image": image}), timeout=timeout))


class RuntimeStub:
    """Unary calls of the runtime service on a ``grpc.Channel``."""

    def __init__(self, channel):
        self._calls = {
            m: channel.unary_unary(path(m), request_serializer=lambda msg: msg.SerializeToString(),
                                   response_deserializer=CLASSES[resp].FromString)
            for m, (_, resp) in METHODS.items()}

    def call(self, method: str, request, timeout: float):
        """The answer, or ``grpc.RpcError``. Waits in short slices so that a
        signal handler (Ctrl-C, SIGTERM) runs within a fraction of a second
        even while a runtime takes its whole deadline to answer."""
        import grpc
        future = self._calls[method].future(request, timeout=timeout)
        try:
            while True:
                try:
                    return future.result(timeout=0.2)
                except grpc.FutureTimeoutError:
                    continue
        except BaseException:
            future.cancel()
            raise
