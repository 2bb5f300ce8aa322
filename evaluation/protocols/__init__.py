"""The protocol registry. A protocol is one module here that calls ``register``; see base.py.

``RANKED_PROTOCOL`` is the protocol leaderboards rank on, by ``RANK_METRIC`` of its ``MEAN_SUBSET``.
"""
from __future__ import annotations

from evaluation.metrics import MEAN_ACCURACY
from evaluation.protocols import adversarial as adversarial  # (registers itself, as each protocol module does)
from evaluation.protocols import cross_generator as cross_generator
from evaluation.protocols import indicators as indicators
from evaluation.protocols import landscape as landscape
from evaluation.protocols import robustness as robustness  # noqa: F401  (registers jpeg- and resize-robustness)
from evaluation.protocols import wild as wild
from evaluation.protocols.base import EVALUATED_SPLIT as EVALUATED_SPLIT
from evaluation.protocols.base import VALIDATION_SPLIT as VALIDATION_SPLIT
from evaluation.protocols.base import Protocol as Protocol
from evaluation.protocols.base import ProtocolResult as ProtocolResult
from evaluation.protocols.base import UnknownProtocolError as UnknownProtocolError
from evaluation.protocols.base import get_protocol as get_protocol
from evaluation.protocols.base import list_analyses as list_analyses
from evaluation.protocols.base import list_protocols as list_protocols
from evaluation.protocols.base import register as register
from evaluation.protocols.cross_generator import MEAN_SUBSET as MEAN_SUBSET

RANKED_PROTOCOL = cross_generator.NAME
RANK_METRIC = MEAN_ACCURACY
