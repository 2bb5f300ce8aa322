"""The protocol registry. A protocol is one module here that calls ``register``; see base.py."""
from __future__ import annotations

from evaluation.protocols import cross_generator as cross_generator  # noqa: F401  (registers itself)
from evaluation.protocols import robustness as robustness  # noqa: F401  (registers jpeg- and resize-robustness)
from evaluation.protocols.base import (
    Protocol as Protocol,
)
from evaluation.protocols.base import (
    ProtocolResult as ProtocolResult,
)
from evaluation.protocols.base import (
    UnknownProtocolError as UnknownProtocolError,
)
from evaluation.protocols.base import (
    get_protocol as get_protocol,
)
from evaluation.protocols.base import (
    list_protocols as list_protocols,
)
from evaluation.protocols.base import (
    register as register,
)
