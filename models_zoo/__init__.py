"""Reference implementations of the research line's methods, in a registry with cards (issue 5).

Imports nothing from Django, DRF or Celery (tests/test_layout.py checks it).
"""
