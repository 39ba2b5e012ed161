"""Loading a user's code named on the command line as ``MODULE:NAME``.

``MODULE`` is a file path (``examples/operators/replicas_ok.py``) or a
dotted module name importable from here (``myoperator.reconcile``). Every
way this can go wrong is the user's to fix and is said in one line (exit 2):
no such file or module, a module that raises or does not parse while
importing, no such name in it, a name that is not a function, a function
that cannot be called with the arguments kubemc passes.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from kubemc.checker.errors import BadInput


def split(spec: str, what: str = "MODULE:FUNCTION") -> tuple[str, str]:
    """``MODULE:NAME`` split at its last colon."""
    module, sep, name = spec.rpartition(":")
    if not sep or not module or not name:
        raise BadInput(f"{spec!r}: expected {what}, e.g. "
                       "examples/operators/replicas_ok.py:reconcile")
    return module, name


def load_module(module: str) -> ModuleType:
    """The module named by a file path or a dotted name, imported once."""
    if module.endswith(".py") or os.sep in module or "/" in module:
        return _from_file(Path(module))
    if not all(part.isidentifier() for part in module.split(".")):
        raise BadInput(f"{module!r} is neither a .py file nor a dotted module name")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise BadInput(f"no module named {module!r}: give a file path ending in .py, or "
                           "a dotted name importable from the current directory") from None
        raise BadInput(f"module {module} does not import: {_what(exc)}") from None
    except Exception as exc:  # the user's module raised while importing
        raise BadInput(f"module {module} does not import: {_what(exc)}") from None


def _from_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise BadInput(f"no file {str(path)!r} (MODULE is a .py file or a dotted module name)")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    name = f"kubemc_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise BadInput(f"{path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        # its own folder first, so it can import the modules next to it
        with _on_path(str(resolved.parent)):
            spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise BadInput(f"{path} does not import: {_what(exc)}") from None
    return module


@contextlib.contextmanager
def _on_path(folder: str):
    sys.path.insert(0, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


def attribute(module: ModuleType, label: str, name: str) -> Any:
    try:
        return getattr(module, name)
    except AttributeError:
        public = sorted(n for n, v in vars(module).items()
                        if not n.startswith("_") and not isinstance(v, ModuleType))
        raise BadInput(f"{label} has no {name!r} (it defines: "
                       f"{', '.join(public[:12]) or 'nothing public'})") from None


def function(spec: str, arity: int, signature: str, default_module: ModuleType | None = None,
             default_label: str = "") -> tuple[Any, str, ModuleType]:
    """The function ``spec`` names (``MODULE:NAME``, or ``NAME`` in
    ``default_module``), checked to take ``arity`` positional arguments.
    Returns (function, label, module)."""
    if ":" not in spec and default_module is not None:
        module, label, name = default_module, f"{default_label}:{spec}", spec
    else:
        path, name = split(spec)
        module, label = load_module(path), spec
    fn = attribute(module, label.rpartition(":")[0], name)
    if not callable(fn):
        raise BadInput(f"{label} is not a function {signature}: it is "
                       f"{_short(fn)} ({type(fn).__name__})")
    try:
        inspect.signature(fn).bind(*([None] * arity))
    except TypeError:
        raise BadInput(f"{label} must take {arity} argument{'s' if arity != 1 else ''}, "
                       f"{signature}; it is "
                       f"{name}{_signature(fn)}") from None
    except ValueError:
        pass  # a builtin without a signature: it will say so when called
    return fn, label, module


def _signature(fn) -> str:
    try:
        return str(inspect.signature(fn))
    except (TypeError, ValueError):
        return "(?)"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _what(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return (f"SyntaxError: {exc.msg} ({os.path.basename(exc.filename or '?')}, "
                f"line {exc.lineno})")
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:160]}" if text else type(exc).__name__
