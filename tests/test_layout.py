"""Layout guards: `platform` stays the standard library everywhere, and the library layers stay Django-free."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = Path(sysconfig.get_paths()["stdlib"]).resolve()
PRINT_PLATFORM = "import platform, sys; print(platform.__file__); platform.system()"
WEB_STACK = {"django", "rest_framework", "celery", "kombu", "spectra"}


def _python(code: str, *, env_extra: dict[str, str] | None = None, args: list[str] | None = None) -> str:
    env = {**os.environ, **(env_extra or {})}
    command = [sys.executable, *(args or ["-c", code])]
    return subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=True).stdout


def _assert_stdlib(printed: str) -> None:
    assert Path(printed.strip().splitlines()[-1]).resolve().parent == STDLIB


def test_platform_folder_is_not_a_package() -> None:
    assert not (ROOT / "platform" / "__init__.py").exists()
    assert sorted(p.name for p in (ROOT / "platform").iterdir() if p.name != "__pycache__") == ["spectra"]


def test_platform_is_the_stdlib_module_under_pytest() -> None:
    import platform

    assert Path(platform.__file__).resolve().parent == STDLIB


def test_platform_is_the_stdlib_module_under_manage_py() -> None:
    _assert_stdlib(_python("", args=["manage.py", "shell", "-c", PRINT_PLATFORM]))


@pytest.mark.parametrize("module", ["spectra.wsgi", "spectra.celery", "evalworker.app"])
def test_platform_is_the_stdlib_module_in_wsgi_and_celery(module: str) -> None:
    code = f"import {module}; {PRINT_PLATFORM}"
    _assert_stdlib(_python(code, env_extra={"PYTHONPATH": f"{ROOT / 'platform'}{os.pathsep}{ROOT}"}))


def _imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", ["evaluation", "models_zoo"])
def test_library_packages_import_nothing_from_the_web_stack(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports_of(path) & WEB_STACK)
        for path in (ROOT / package).rglob("*.py")
        if _imports_of(path) & WEB_STACK
    }
    assert not offenders


WORKER_PROBE = """
import sys
import evalworker.app, evaluation.runner, evaluation.protocols
blocked = ("django.conf", "django.db", "spectra")
loaded = sorted(m for m, module in sys.modules.items() if module and m.startswith(blocked))
try:
    from django.conf import settings
except ImportError:
    loaded.append("blocked")
print(loaded)
"""


def test_evaluation_worker_imports_no_django_even_at_run_time() -> None:
    env = {"PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": ""}
    assert _python(WORKER_PROBE, env_extra=env).strip() == "['blocked']"


def test_modules_the_web_process_uses_do_not_import_torch() -> None:
    code = (
        "import sys, evaluation, evaluation.metrics, evaluation.messages, evaluation.detectors.formats, "
        "evaluation.datasets.manifest; print('torch' in sys.modules)"
    )
    assert _python(code, env_extra={"PYTHONPATH": str(ROOT)}).strip() == "False"


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))], cwd=ROOT, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'platform'}"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_web_process_never_imports_torch() -> None:
    code = (
        "import sys, spectra.urls, spectra.submissions.services.submissions, spectra.submissions.tasks; "
        "from django.core.management import get_commands; get_commands(); print('torch' in sys.modules)"
    )
    printed = _python("", args=["manage.py", "shell", "-c", code])
    assert printed.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize(("module", "line"), [
    ("evaluation/_probe_cycle.py", "import models_zoo.registry\n"),  # the library reaching up into the zoo
    ("platform/spectra/_probe_torch.py", "import torch\n"),  # the web process importing torch
])
def test_import_linter_contracts_fail_on_a_violation(tmp_path: Path, module: str, line: str) -> None:
    for part in ("evaluation", "models_zoo", "evalworker", "platform/spectra"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / module).write_text(line)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports"))], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{tmp_path / 'platform'}"},
    )
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout + result.stderr
