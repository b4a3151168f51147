"""Install what scanbook needs on Colab, keeping every package the Colab image already has.

Defined in chapter 1, for its first code cell, which every chapter repeats:

    %pip install -q --no-deps "scanbook @ git+<the book's repository>"
    import scanbook_colab

    scanbook_colab.install()

The first line installs scanbook alone. A Colab image brings its own NumPy, JAX (with the CUDA
plugin for its driver), CUDA libraries and often Numba; replacing any of them would leave a
CPU-only JAX or a NumPy that the image's compiled packages were not built for. So
:func:`install` asks the package installer for the requirements of scanbook that are *missing*,
with every installed distribution pinned to the version it has (a constraints file), and checks
afterwards that nothing installed before changed. A requirement installed in a version outside
scanbook's tested range is kept too, with a warning.

Numba's CUDA target needs a binding for the driver's CUDA major version: numba-cuda's ``cu12``
or ``cu13`` extra. :func:`cuda_driver_major` reads the driver's version through ``ctypes``
(``cuDriverGetVersion`` in ``libcuda.so.1``, falling back to ``nvidia-smi``) without importing
numba, whose first import must come after scanbook has chosen between the GPU and the CUDA
simulator. Without a GPU no binding is needed: the kernels run in Numba's simulator.

Standard library only: this module runs before NumPy or anything else of the book is importable.
``SCANBOOK_CUDA_MAJOR`` overrides the driver's CUDA major version (``0``: no GPU).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

__all__ = [
    "Plan",
    "binding_extra",
    "bindings_only",
    "cuda_driver_major",
    "install",
    "installed_versions",
    "plan",
    "requirements",
    "satisfies",
]

#: numba-cuda's extras, one per CUDA major version of the driver it binds to
BINDINGS = {12: "cu12", 13: "cu13"}
_SPEC = re.compile(r"(~=|===|==|!=|<=|>=|<|>)\s*([^\s,]+)")
_REQ = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*\(?([^;()]*)\)?\s*(;.*)?$"
)
_PEP440 = re.compile(
    r"^\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?(\+[a-z0-9]+(\.[a-z0-9]+)*)?$", re.I
)


def normalize(name: str) -> str:
    """A distribution name as installers compare it (PEP 503): ``Numba_CUDA``: ``numba-cuda``."""
    return re.sub(r"[-_.]+", "-", name).lower()


# -- the driver ---------------------------------------------------------------------------------
def _driver_version_ctypes() -> int | None:
    for lib in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            cuda = ctypes.CDLL(lib)
        except OSError:
            continue
        version = ctypes.c_int(0)
        try:
            if cuda.cuDriverGetVersion(ctypes.byref(version)) == 0 and version.value > 0:
                return version.value  # 12040 for CUDA 12.4
        except AttributeError:
            pass
    return None


def _driver_version_nvidia_smi() -> int | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", out)
    return int(m.group(1)) * 1000 + int(m.group(2)) * 10 if m else None


def cuda_driver_major() -> int | None:
    """The CUDA major version the installed NVIDIA driver supports (12, 13, ...), or None.

    None means no usable driver (no GPU). ``SCANBOOK_CUDA_MAJOR`` overrides it (``0``: none).
    Defined in chapter 1 (the install cell).
    """
    forced = os.environ.get("SCANBOOK_CUDA_MAJOR", "").strip()
    if forced:
        if not forced.isdigit():
            raise ValueError(
                f"SCANBOOK_CUDA_MAJOR must be a whole number (0: no GPU); got {forced!r}"
            )
        return int(forced) or None
    version = _driver_version_ctypes() or _driver_version_nvidia_smi()
    return version // 1000 if version else None


def binding_extra(major: int | None) -> str | None:
    """numba-cuda's extra for a driver of CUDA major version ``major``: ``"cu12"``, ``"cu13"``.

    A driver runs code built for its own major version or an older one, so a newer driver than
    any binding gets the newest binding. None (no GPU, or a driver older than CUDA 12, which
    numba-cuda does not support): no binding, Numba's CUDA simulator runs the kernels.
    Defined in chapter 1 (the install cell).
    """
    if major is None:
        return None
    if isinstance(major, bool) or not isinstance(major, int):
        raise TypeError(f"major must be an int or None; got {type(major).__name__}")
    fitting = [m for m in BINDINGS if m <= major]
    return BINDINGS[max(fitting)] if fitting else None


# -- versions -----------------------------------------------------------------------------------
def _release(version: str) -> tuple[int, ...]:
    m = re.match(r"\d+(\.\d+)*", version)
    if not m:
        raise ValueError(f"not a version: {version!r}")
    return tuple(int(p) for p in m.group(0).split("."))


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def satisfies(version: str, specifier: str) -> bool:
    """Whether ``version`` meets ``specifier`` (``">=2.0,<3"``), comparing release numbers.

    Enough for the ranges in scanbook's requirements (pre-release tags count as their release).
    Defined in chapter 1 (the install cell).
    """
    have = _release(version)
    for op, want in _SPEC.findall(specifier):
        if want.endswith(".*"):
            prefix = _release(want[:-2])
            same = (have + (0,) * len(prefix))[: len(prefix)] == prefix
            if (op == "==" and not same) or (op == "!=" and same):
                return False
            continue
        c = _cmp(have, _release(want))
        ok = {
            "==": c == 0,
            "===": version == want,
            "!=": c != 0,
            ">=": c >= 0,
            "<=": c <= 0,
            ">": c > 0,
            "<": c < 0,
            "~=": c >= 0 and have[: len(_release(want)) - 1] == _release(want)[:-1],
        }[op]
        if not ok:
            return False
    return True


def installed_versions() -> dict[str, str]:
    """Every installed distribution: normalized name -> version. Defined in chapter 1."""
    out = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            out.setdefault(normalize(name), dist.version)
    return out


def requirements(dist: str = "scanbook") -> list[str]:
    """The requirements of the installed ``dist``, not its extras'.

    Defined in chapter 1 (the install cell).
    """
    reqs = importlib.metadata.requires(dist) or []
    return [r for r in reqs if not re.search(r";.*\bextra\s*==", r)]


# -- the plan -----------------------------------------------------------------------------------
@dataclass
class Plan:
    """What :func:`install` keeps and what it asks the installer for.

    Attributes:
        binding: numba-cuda's extra for the driver (``"cu12"``, ``"cu13"``), or None.
        keep: installed requirements, name -> version, left as they are.
        outside: those of ``keep`` whose version is outside scanbook's range: name ->
            (version, range).
        install: requirement strings for the installer (the missing ones, and numba-cuda with
            the driver's binding).
    """

    binding: str | None
    keep: dict[str, str] = field(default_factory=dict)
    outside: dict[str, tuple[str, str]] = field(default_factory=dict)
    install: list[str] = field(default_factory=list)


def plan(reqs: list[str], have: dict[str, str], cuda_major: int | None) -> Plan:
    """Sort ``reqs`` into kept and to-install, given the installed versions ``have``.

    Defined in chapter 1 (the install cell).
    """
    p = Plan(binding=binding_extra(cuda_major))
    for req in reqs:
        m = _REQ.match(req)
        if not m:
            raise ValueError(f"cannot read the requirement {req!r}")
        raw, extras, spec, marker = m.groups()
        name, spec = normalize(raw), spec.strip()
        if name == "numba-cuda" and p.binding:
            extras = ",".join(e for e in [extras, p.binding] if e)
        if name in have:
            p.keep[name] = have[name]
            if spec and not satisfies(have[name], spec):
                p.outside[name] = (have[name], spec)
            if name == "numba-cuda" and p.binding:  # bring the binding, keep numba-cuda itself
                p.install.append(f"{raw}[{extras}]")
            continue
        p.install.append(f"{raw}{f'[{extras}]' if extras else ''}{spec}{marker or ''}")
    return p


def bindings_only(p: Plan) -> list[str]:
    """``p.install`` with numba-cuda's extra replaced by the bare binding (``cuda-bindings==12.*``).

    The extra also brings CUDA toolkit wheels (NVRTC, NVVM, ...) pinned to one toolkit release,
    which may not fit the versions an image already has; the binding alone then uses the
    image's own toolkit. Defined in chapter 1 (the install cell).
    """
    out = []
    for req in p.install:
        name, extras, spec, marker = _REQ.match(req).groups()
        if normalize(name) == "numba-cuda" and extras:
            rest = [e for e in extras.split(",") if e.strip() != p.binding]
            kept = f"[{','.join(rest)}]" if rest else ""
            out.append(f"{name}{kept}{spec}{marker or ''}")
            out.append(f"cuda-bindings=={p.binding[2:]}.*")
        else:
            out.append(req)
    return out


def _constraints(have: dict[str, str]) -> str:
    lines = [
        f"{name}=={version}"
        for name, version in sorted(have.items())
        if name != "scanbook" and _PEP440.match(version)
    ]
    return "\n".join(lines) + "\n"


def install(dist: str = "scanbook", quiet: bool = True) -> Plan:
    """Install ``dist``'s missing requirements; replace nothing that is installed.

    Returns the :class:`Plan` it carried out. Raises RuntimeError when the installer fails or
    changed an installed package after all. Defined in chapter 1 (the install cell).
    """
    before = installed_versions()
    major = cuda_driver_major()
    p = plan(requirements(dist), before, major)
    if p.binding:
        print(f"{dist}: a CUDA {major} driver: Numba CUDA with its {p.binding} binding")
    elif major:
        print(f"{dist}: a CUDA {major} driver, too old for Numba CUDA: its simulator is used")
    else:
        print(
            f"{dist}: no CUDA driver: Numba's CUDA simulator runs the kernels (no binding needed)"
        )
    if p.keep:
        print(f"{dist}: keeping " + ", ".join(f"{n} {v}" for n, v in sorted(p.keep.items())))
    for name, (version, spec) in sorted(p.outside.items()):
        print(f"{dist}: warning: keeping {name} {version}, outside the tested range {spec}")
    if p.install:
        with tempfile.TemporaryDirectory() as tmp:
            pins = os.path.join(tmp, "constraints.txt")
            with open(pins, "w") as f:
                f.write(_constraints(before))
            tries = [p.install]
            if p.binding:  # the extra's CUDA toolkit wheels may clash with the image's: the
                tries.append(bindings_only(p))  # binding alone uses the image's toolkit
            for reqs in tries:
                cmd = [sys.executable, "-m", "pip", "install", "-c", pins, *reqs]
                done = subprocess.run(
                    cmd + (["-q"] if quiet else []), capture_output=True, text=True
                )
                if done.returncode == 0:
                    break
                print(f"{dist}: could not install {' '.join(reqs)} next to what is installed")
            else:
                raise RuntimeError(
                    f"installing {' '.join(p.install)} without replacing installed packages "
                    f"failed (exit {done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
                )
    after = installed_versions()
    changed = {n: (v, after.get(n)) for n, v in before.items() if after.get(n) != v}
    if changed:
        raise RuntimeError(f"the installer replaced installed packages (before, after): {changed}")
    added = {n: v for n, v in after.items() if n not in before}
    if added:
        print(f"{dist}: installed " + ", ".join(f"{n} {v}" for n, v in sorted(added.items())))
    return p


if __name__ == "__main__":
    install()
