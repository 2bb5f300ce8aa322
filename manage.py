#!/usr/bin/env python
"""Django's command-line utility. Puts platform/ (a source root, never a package) on sys.path."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> None:
    # platform/ holds exactly one importable name (spectra); the repo root holds evaluation/ and
    # models_zoo/. Neither shadows the standard library's `platform` (tests/test_layout.py checks it).
    sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spectra.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
