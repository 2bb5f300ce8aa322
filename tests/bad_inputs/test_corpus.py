"""The corpus itself: enough kinds, each defined once, and the table at the top of corpus.py lists exactly them."""
from __future__ import annotations

from tests.bad_inputs import corpus

FAMILIES = ("model", "image", "manifest", "request")


def _table() -> list[tuple[str, str]]:
    """(kind, family) of each row of the table in the corpus module's docstring."""
    rows = [line.strip("|").split("|") for line in (corpus.__doc__ or "").splitlines() if line.startswith("| ")]
    return [(cells[0].strip(), cells[1].strip()) for cells in rows if cells[0].strip() not in ("kind", "---")]


def test_the_corpus_has_at_least_24_kinds() -> None:
    names = [kind.name for kind in corpus.KINDS]
    assert len(names) >= 24, len(names)
    assert len(set(names)) == len(names), "a kind is defined twice"
    assert {kind.family for kind in corpus.KINDS} == set(FAMILIES)


def test_the_table_at_the_top_of_the_corpus_lists_every_kind_once() -> None:
    assert _table() == [(kind.name, kind.family) for kind in corpus.KINDS]


def test_every_kind_says_what_it_expects() -> None:
    for kind in corpus.KINDS:
        decodes = kind.family == "image" and kind.message is None  # an image Spectra decodes instead
        assert decodes or (isinstance(kind.message, str) and len(kind.message) >= 4), kind.name
