"""The zoo registry: cards without torch, duplicates refused, unknown names answered with close ones."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from models_zoo import registry
from models_zoo.registry import Card, UnknownModelError, add_card, get_card, list_cards, register_model

ROOT = Path(__file__).resolve().parents[2]


def test_listing_the_cards_imports_no_torch() -> None:
    code = ("import sys; from models_zoo.registry import list_cards; names = [c.name for c in list_cards()]; "
            "print('torch' in sys.modules, len(names))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    imported, count = done.stdout.split()
    assert imported == "False" and int(count) >= 3


def test_every_card_is_complete_and_its_builder_exists() -> None:
    import importlib

    for card in list_cards():
        for field in ("title", "paper", "authors", "arxiv", "bibtex", "licence", "input_contract", "preprocessing"):
            assert getattr(card, field), (card.name, field)
        assert card.reported and all(r.trust.startswith("[") for r in card.reported), card.name
        assert card.choices, card.name
        module, _, function = card.builder.partition(":")
        assert callable(getattr(importlib.import_module(module), function))


def test_an_unknown_name_lists_the_closest_valid_names() -> None:
    with pytest.raises(UnknownModelError, match="did you mean: spectral-lr"):
        get_card("spectral_lr")


def test_duplicate_names_and_mismatched_builders_are_errors(monkeypatch) -> None:
    monkeypatch.setattr(registry, "_CARDS", dict(registry._CARDS))
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    card = get_card("spectral-lr")
    with pytest.raises(ValueError, match="declared twice"):
        add_card(card)
    with pytest.raises(ValueError, match="registered twice"):
        register_model("spectral-lr")(registry._BUILDERS.get("spectral-lr") or _import_builder("spectral-lr"))
    add_card(Card(**{**card.__dict__, "name": "test-entry", "builder": "models_zoo.spectral:build_svm"}))
    with pytest.raises(ValueError, match="names builder"):
        register_model("test-entry")(lambda: None)


def _import_builder(name: str):
    registry.create_model  # noqa: B018 - the builder module registers on import
    import importlib

    module, _, function = get_card(name).builder.partition(":")
    return getattr(importlib.import_module(module), function)
