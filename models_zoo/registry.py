"""The zoo's registry: a card (torch-free metadata) per entry, and builders registered by a decorator.

Cards live in ``models_zoo.cards`` and name their builder by dotted path ("models_zoo.spectral:build_lr"), so
the web side lists and validates entries without importing torch; ``create_model`` imports the builder's
module on first use. A duplicate name is an error; an unknown name raises with the closest valid names.

Detector entries follow one contract, so a safetensors upload can name them: ``create_model(name,
input_size=S)`` builds the *untrained* architecture (deterministic tensor names and shapes for a given S), and
``train_model(name, root, input_size=S, seed=...)`` runs the card's recipe on the train split of the dataset
version at ``root`` and returns a module with exactly that state-dict layout.
"""
from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evaluation.detectors.architectures import use_architectures
from evaluation.errors import DetectorLoadError


class UnknownModelError(ValueError):
    """A name that is not in the zoo; the message lists the closest valid names."""


@dataclass(frozen=True)
class Reported:
    """A number the paper reports, with its trust tag from research/seeds.md ([code], [fig], [abs], ...)."""

    what: str
    value: str
    trust: str


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    kind: str  # detector | embedding | generator | optimiser | analysis
    paper: str
    authors: str
    year: int
    arxiv: str
    bibtex: str
    licence: str
    input_contract: str
    preprocessing: str
    builder: str  # "module:function", imported lazily; detectors: (input_size: int) -> untrained module
    reported: tuple[Reported, ...] = ()
    choices: tuple[str, ...] = ()  # what this project chose where the paper is silent
    tags: tuple[str, ...] = field(default_factory=tuple)
    trainer: str = ""  # "module:function": (root: Path, *, input_size: int, seed: int, **options) -> module
    trained_on: tuple[str, ...] = ("original",)  # the dataset variants its baseline rows are trained on

    @property
    def uploadable(self) -> bool:
        """A safetensors upload may name this entry as its architecture."""
        return self.kind == "detector"


_CARDS: dict[str, Card] = {}
_BUILDERS: dict[str, Callable[..., Any]] = {}


def add_card(card: Card) -> Card:
    if card.name in _CARDS:
        raise ValueError(f"zoo entry {card.name!r} is declared twice")
    _CARDS[card.name] = card
    return card


def register_model(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for a builder: the entry must have a card that names this very function."""
    def attach(builder: Callable[..., Any]) -> Callable[..., Any]:
        card = get_card(name)
        path = f"{builder.__module__}:{builder.__qualname__}"
        if card.builder != path:
            raise ValueError(f"card {name!r} names builder {card.builder}, not {path}")
        if name in _BUILDERS:
            raise ValueError(f"zoo entry {name!r} is registered twice")
        _BUILDERS[name] = builder
        return builder
    return attach


def list_cards(kind: str | None = None) -> list[Card]:
    _load_cards()
    return sorted((c for c in _CARDS.values() if kind is None or c.kind == kind), key=lambda c: c.name)


def get_card(name: str) -> Card:
    _load_cards()
    try:
        return _CARDS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _CARDS, n=3, cutoff=0.4) or sorted(_CARDS)
        raise UnknownModelError(f"no zoo entry named {name!r}; did you mean: {', '.join(close)}?") from None


def create_model(name: str, **kwargs: Any) -> Any:
    """Build an entry by name; its module (and torch) is imported only now."""
    card = get_card(name)
    if name not in _BUILDERS:
        importlib.import_module(card.builder.partition(":")[0])
    return _BUILDERS[name](**kwargs)


def train_model(name: str, root: Any, **kwargs: Any) -> Any:
    """Run the entry's training recipe on the dataset version at ``root``; its module is imported only now."""
    card = get_card(name)
    if not card.trainer:
        raise ValueError(f"zoo entry {name!r} has no training recipe")
    module, _, function = card.trainer.partition(":")
    return getattr(importlib.import_module(module), function)(root, **kwargs)


def uploadable_names() -> list[str]:
    """Entries a safetensors upload may name as its architecture (torch-free)."""
    return [card.name for card in list_cards() if card.uploadable]


def _load_cards() -> None:
    importlib.import_module("models_zoo.cards")  # declares every card once (a module runs once)


def build_detector_architecture(name: str, input_size: int) -> Any:
    """The untrained detector ``name`` at ``input_size``, for a safetensors upload naming it (the evaluating
    process wires this in with ``evaluation.detectors.architectures.use_architectures``)."""
    try:
        card = get_card(name)
    except UnknownModelError as error:
        raise DetectorLoadError(str(error)) from None
    if not card.uploadable:
        raise DetectorLoadError(f"The zoo entry {name!r} ({card.kind}) is not a detector architecture.")
    return create_model(name, input_size=input_size)


# Importing the registry is what wires the zoo into the evaluation library's loader.
use_architectures(build_detector_architecture)
