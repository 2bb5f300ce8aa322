"""How the scorer child is started: bubblewrap where it works, resource limits always, and what that gave.

Under bubblewrap the child has its own user, PID, IPC, UTS and network namespaces (no network at all), a root
made of read-only binds of the Python environment and the code it runs (``evaluation``, the zoo), the one
model file at ``/sandbox/model``, an empty ``/tmp``, a minimal ``/dev`` and its own ``/proc``, and no
capabilities. Without bubblewrap (a laptop without it) it still runs as its own process under the same limits,
in a network namespace of its own where the kernel allows unprivileged ones. ``Isolation`` records which.
"""
from __future__ import annotations

import ctypes
import functools
import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from evaluation.errors import PlatformFault

SANDBOX_MODEL_PATH = "/sandbox/model"
NOBODY = 65534  # the unprivileged user the child runs as
REQUIRE_SANDBOX_VARIABLE = "SPECTRA_REQUIRE_SANDBOX"
_PR_SET_PDEATHSIG = 1
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000
_counter = itertools.count()


class SandboxUnavailable(PlatformFault):
    """Full isolation is required (SPECTRA_REQUIRE_SANDBOX=1) but bubblewrap does not work here."""


@dataclass(frozen=True)
class ScorerLimits:
    """Budgets and limits of a scorer child; each field reads SPECTRA_SCORER_<FIELD> from the environment."""

    load_seconds: float = 120.0  # to start the child and load the model
    probe_seconds: float = 60.0  # the probe batch (two images), the first call into the model
    batch_factor: float = 20.0  # a later batch may take this many times the probe's time per image …
    min_batch_seconds: float = 30.0  # … but never less than this
    memory_mb: int = 16384  # address space (a cgroup memory limit instead on CUDA, where one is writable)
    processes: int = 512  # threads count too: torch starts one per core
    open_files: int = 256
    cpu_seconds: int = 86400  # over the child's life, which spans every shard of one artifact
    file_mb: int = 64  # the largest file it may write (its /tmp is in memory)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ScorerLimits:
        environ = os.environ if environ is None else environ
        values = {}
        for spec in fields(cls):
            raw = environ.get(f"SPECTRA_SCORER_{spec.name.upper()}", "").strip()
            if raw:
                try:
                    values[spec.name] = type(spec.default)(float(raw))
                except ValueError:
                    raise ValueError(f"SPECTRA_SCORER_{spec.name.upper()}={raw!r} is not a number") from None
        return cls(**values)

    def batch_seconds(self, probe_seconds_per_image: float, images: int) -> float:
        return max(self.min_batch_seconds, self.batch_factor * probe_seconds_per_image * images)


@dataclass(frozen=True)
class Isolation:
    """What isolated one scorer child, as shown on the submission's page."""

    sandbox: str  # "bubblewrap" or "process"
    network: str  # "none" or "the worker's"
    filesystem: str
    user: str
    limits: dict[str, float] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        return self.sandbox == "bubblewrap" and self.network == "none"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "full": self.full}


@functools.cache
def bubblewrap_problem() -> str:
    """Why bubblewrap cannot sandbox here ("" when it can): missing, or namespaces refused."""
    binary = shutil.which("bwrap")
    if binary is None:
        return "bubblewrap (bwrap) is not installed"
    probe = subprocess.run([binary, "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/", "/",
                            "true"], capture_output=True, text=True, timeout=30)
    if probe.returncode:
        return f"bubblewrap cannot create namespaces here: {probe.stderr.strip() or probe.returncode}"
    return ""


def require_sandbox() -> bool:
    return os.environ.get(REQUIRE_SANDBOX_VARIABLE, "").strip() not in ("", "0")


def check_sandbox_requirement() -> None:
    """Raise SandboxUnavailable when full isolation is required and bubblewrap does not work."""
    if require_sandbox() and bubblewrap_problem():
        raise SandboxUnavailable(f"{REQUIRE_SANDBOX_VARIABLE}=1 but {bubblewrap_problem()}; install bubblewrap "
                                 "(Debian: apt-get install bubblewrap) or unset the variable")


@dataclass(frozen=True)
class ScorerLaunch:
    """Everything ``subprocess.Popen`` needs to start one scorer child, and the isolation it gets."""

    argv: list[str]
    model_path: str  # where the child finds the model
    env: dict[str, str]
    pass_fds: tuple[int, ...]
    preexec: Callable[[], None]
    isolation: Isolation
    cleanup: Callable[[], None]


def _code_roots(wire: Sequence[str]) -> list[Path]:
    """The package folders the child imports from the project: evaluation and the wired-in modules' packages."""
    import importlib.util

    roots = []
    for top in dict.fromkeys(["evaluation", *(name.split(".")[0] for name in wire)]):
        spec = importlib.util.find_spec(top)
        if spec is None or not spec.submodule_search_locations:
            raise PlatformFault(f"the scorer needs the package {top!r}, which this worker cannot find")
        roots.append(Path(next(iter(spec.submodule_search_locations))).resolve())
    return roots


def _python_roots() -> list[Path]:
    roots = {Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(), Path(sys.executable).resolve().parent.parent}
    return sorted(roots)


def _readable_by_others(paths: Sequence[Path]) -> bool:
    """Whether an unprivileged user could reach every path (world-executable folders up to it)."""
    for path in paths:
        for folder in [path, *path.parents]:
            try:
                if not folder.stat().st_mode & 0o001:
                    return False
            except OSError:
                return False
    return True


def child_command(requests: int, replies: int, wire: Sequence[str]) -> list[str]:
    return [sys.executable, "-s", "-m", "evaluation.sandbox.child", "--requests", str(requests), "--replies",
            str(replies), *(arg for name in wire for arg in ("--wire", name))]


def _child_env(code_roots: Sequence[Path]) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8", "HF_HUB_OFFLINE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": os.pathsep.join(sorted({str(r.parent) for r in code_roots}))}
    if "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def _system_binds() -> list[str]:
    """/usr and the merged-/usr links (or folders) beside it, the CPU description torch reads, GPUs if any."""
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        path = Path("/") / name
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    if Path("/sys/devices/system/cpu").is_dir():
        args += ["--ro-bind", "/sys/devices/system/cpu", "/sys/devices/system/cpu"]
    for device in sorted(Path("/dev").glob("nvidia*")):
        args += ["--dev-bind", str(device), str(device)]
    return args


def bubblewrap_argv(model: Path, code_roots: Sequence[Path], env: dict[str, str], command: Sequence[str]) -> list[str]:
    """The bwrap command line: no namespace shared with the worker, read-only binds only, the environment cleared."""
    # The empty /tmp comes first: a checkout or Python environment that lives under /tmp is bound on top of it.
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid",
            str(NOBODY), "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv", "--tmpfs", "/tmp",
            *_system_binds()]
    for root in [*_python_roots(), *code_roots]:
        argv += ["--ro-bind", str(root), str(root)]
    argv += ["--ro-bind", str(model), SANDBOX_MODEL_PATH, "--proc", "/proc", "--dev", "/dev", "--chdir", "/tmp"]
    for name, value in env.items():
        argv += ["--setenv", name, value]
    return [*argv, "--", *command]


@dataclass(frozen=True)
class _Cgroup:
    """A cgroup (v1 controller folders, or one v2 folder) the child enters before it runs anything."""

    folders: tuple[Path, ...]

    def enter(self) -> None:
        for folder in self.folders:
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for folder in self.folders:
            try:
                folder.rmdir()
            except OSError:
                pass  # still busy (a straggler) or already gone: the kernel frees it when it empties


def _cgroup(name: str, settings: dict[str, tuple[str, str]]) -> _Cgroup | None:
    """A fresh cgroup with ``settings`` (controller -> (file, value)), where this process may make one."""
    unified = Path("/sys/fs/cgroup")
    own = next((line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                if line.startswith("0::")), "/")
    folders = []
    try:
        if (unified / "cgroup.controllers").is_file():  # v2: the worker's own cgroup must delegate the controllers
            parent = unified / own.lstrip("/")
            if not set(settings) <= set((parent / "cgroup.subtree_control").read_text().split()):
                return None
            folders.append(parent / name)
            folders[0].mkdir()
            for file, value in settings.values():
                (folders[0] / file).write_text(value)
        else:  # v1: one hierarchy per controller
            for controller, (file, value) in settings.items():
                folder = unified / controller / name
                folder.mkdir()
                folders.append(folder)
                (folder / file).write_text(value)
    except OSError:
        _Cgroup(tuple(folders)).remove()
        return None
    return _Cgroup(tuple(folders))


@functools.cache
def _can_unshare_network() -> bool:
    """Whether an unprivileged user and network namespace can be made here (the fallback's network cut)."""
    probe = subprocess.run([sys.executable, "-c", "import ctypes,sys; libc = ctypes.CDLL(None, use_errno=True); "
                            f"sys.exit(libc.unshare({_CLONE_NEWUSER | _CLONE_NEWNET}))"], capture_output=True)
    return probe.returncode == 0


def _rlimits(limits: ScorerLimits, *, address_space: bool, processes: bool) -> dict[int, int]:
    chosen = {resource.RLIMIT_CPU: limits.cpu_seconds, resource.RLIMIT_NOFILE: limits.open_files,
              resource.RLIMIT_FSIZE: limits.file_mb << 20, resource.RLIMIT_CORE: 0}
    if address_space:
        chosen[resource.RLIMIT_AS] = limits.memory_mb << 20
    if processes:
        chosen[resource.RLIMIT_NPROC] = limits.processes
    return chosen


def _preexec(rlimits: dict[int, int], cgroup: _Cgroup | None, *, drop_to: int | None,
             unshare_network: bool) -> Callable[[], None]:
    def run() -> None:  # in the child, between fork and exec
        if cgroup is not None:
            cgroup.enter()
        for which, value in rlimits.items():
            resource.setrlimit(which, (value, value))
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the worker's death ends the child
        if drop_to is not None:
            os.setgroups([])
            os.setgid(drop_to)
            os.setuid(drop_to)
        if unshare_network:
            libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET)
    return run


def scorer_launch(model: Path, *, requests: int, replies: int, cuda: bool, limits: ScorerLimits,
                  wire: Sequence[str] = (), command: Sequence[str] | None = None) -> ScorerLaunch:
    """How to start the scorer child for ``model``; ``requests``/``replies`` are its ends of the two pipes.
    ``command`` replaces the child's program under the very same sandbox (the tests run hostile code so)."""
    check_sandbox_requirement()
    code_roots = _code_roots(wire)
    env = _child_env(code_roots)
    command = list(command) if command is not None else child_command(requests, replies, wire)
    sandboxed = not bubblewrap_problem()
    # As root, run bubblewrap itself as nobody when nobody can read everything it binds; else the user
    # namespace still makes the child nobody inside (mapped to the worker's user outside).
    drop_to = NOBODY if os.geteuid() == 0 and _readable_by_others([*_python_roots(), *code_roots, model]) else None
    memory = {"memory": ("memory.limit_in_bytes" if not Path("/sys/fs/cgroup/cgroup.controllers").is_file()
                         else "memory.max", str(limits.memory_mb << 20))} if cuda else {}
    cgroup = _cgroup(f"spectra-scorer-{os.getpid()}-{next(_counter)}",
                     {"pids": ("pids.max", str(limits.processes)), **memory})
    # RLIMIT_NPROC counts every process of the child's real user: only meaningful for a user of its own.
    nproc = cgroup is None and drop_to is not None
    unshare_network = not sandboxed and _can_unshare_network()
    isolation = Isolation(
        sandbox="bubblewrap" if sandboxed else "process",
        network="none" if sandboxed or unshare_network else "the worker's",
        filesystem="the Python environment, the evaluator's code and the model file, read-only; an empty /tmp"
                   if sandboxed else "the worker's (bubblewrap is missing)",
        user=_user_description(sandboxed, drop_to),
        limits=_limits_description(limits, memory=not cuda or cgroup is not None,
                                   processes=cgroup is not None or nproc),
    )
    argv = bubblewrap_argv(model, code_roots, env, command) if sandboxed else command
    return ScorerLaunch(
        argv=argv, model_path=SANDBOX_MODEL_PATH if sandboxed else str(model), env=env, pass_fds=(requests, replies), isolation=isolation,
        preexec=_preexec(_rlimits(limits, address_space=not cuda, processes=nproc), cgroup, drop_to=drop_to,
                         unshare_network=unshare_network),
        cleanup=cgroup.remove if cgroup is not None else (lambda: None),
    )


def _user_description(sandboxed: bool, drop_to: int | None) -> str:
    if drop_to is not None:
        return f"uid {drop_to} (nobody), no capabilities"
    if sandboxed:
        return (f"uid {NOBODY} in its own user namespace, no capabilities (uid {os.geteuid()} outside: the Python "
                "environment is not readable by other users)")
    return f"the worker's (uid {os.geteuid()})"


def _limits_description(limits: ScorerLimits, *, memory: bool, processes: bool) -> dict[str, float]:
    """The limits that really apply (a limit that could not be set here is left out)."""
    described: dict[str, float] = {"cpu_seconds": limits.cpu_seconds, "open_files": limits.open_files,
                                   "file_mb": limits.file_mb, "load_seconds": limits.load_seconds,
                                   "probe_seconds": limits.probe_seconds}
    if memory:
        described["memory_mb"] = limits.memory_mb
    if processes:
        described["processes"] = limits.processes
    return described
