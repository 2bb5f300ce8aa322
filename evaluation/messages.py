"""Messages between the platform and the evaluation worker, versioned and validated on both ends.

They travel as JSON dicts through the broker. ``from_dict`` refuses a message of another schema
version or with missing fields, so a mismatched worker fails loudly instead of writing wrong numbers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, TypeVar

from evaluation.metrics import LOGIT_LIMIT

# Versions: 2 added ShardDone.worker, 3 ShardDone.conditions, 4 ShardRequest.artifact_architecture; in 5
# ShardDone.scores are logits instead of probabilities and ShardDone.metrics is gone (the platform computes them);
# 6 added the attempt to every shard message, ShardDone.isolation and WorkerAlive; 7 ShardDone.retryable (an
# expired presigned link: the platform sends the shard again with fresh links); 8 the status "not_applicable"
# (the detector lacks a capability the protocol needs; ``error`` says which) and ShardDone.analysis.
MESSAGE_VERSION = 8
NOT_APPLICABLE = "not_applicable"
STARTED_STAGE = "started"  # the first progress of a delivery: the platform counts deliveries by it

T = TypeVar("T", bound="_Message")


class MessageError(ValueError):
    """A message that does not follow the schema; it is dropped and logged, never written."""


@dataclass(frozen=True)
class _Message:
    def to_dict(self) -> dict[str, Any]:
        return {"version": MESSAGE_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls: type[T], data: Any) -> T:
        if not isinstance(data, dict):
            raise MessageError(f"{cls.__name__}: expected an object, got {type(data).__name__}")
        if data.get("version") != MESSAGE_VERSION:
            raise MessageError(f"{cls.__name__}: message version {data.get('version')!r} != {MESSAGE_VERSION}")
        names = {f.name for f in fields(cls)}
        missing = sorted(n for n in names if n not in data)
        if missing:
            raise MessageError(f"{cls.__name__}: missing fields {', '.join(missing)}")
        return cls(**{n: data[n] for n in names})


@dataclass(frozen=True)
class ShardRequest(_Message):
    """``evaluate_shard``: what to run, on which rows, read from where."""

    run_id: int
    artifact_url: str
    artifact_sha256: str
    artifact_format: str
    input_size: int
    dataset_root_url: str
    manifest_url: str
    manifest_sha256: str
    protocol: str
    protocol_version: int
    config: dict[str, Any]
    split: str
    first_row: int
    last_row: int  # exclusive, counted over the manifest rows of `split`
    device_hint: str = "auto"
    artifact_architecture: str = ""  # the zoo architecture of a safetensors artifact
    attempt: int = 1  # the platform's attempt number: messages of a superseded attempt are ignored


@dataclass(frozen=True)
class ShardProgress(_Message):
    """``shard_progress``: sent at most every few seconds."""

    run_id: int
    done: int
    total: int
    stage: str  # started | loading | scoring; also sent every few seconds as the shard's heartbeat
    attempt: int = 1


@dataclass(frozen=True)
class ShardDone(_Message):
    """``shard_done``: the shard's outcome. On failure, ``error`` is in plain words."""

    run_id: int
    status: str  # "done" | "failed" | NOT_APPLICABLE
    evaluator_version: str
    artifact_sha256: str
    manifest_sha256: str
    protocol: str
    protocol_version: int
    row_ids: list[int] = field(default_factory=list)  # manifest line numbers (0-based) of the scores
    scores: list[float] = field(default_factory=list)  # logits of "generated": per condition, then per row id
    conditions: list[str] = field(default_factory=list)  # the perturbations scored; empty means clean only
    timings: dict[str, float] = field(default_factory=dict)
    error: str = ""
    error_kind: str = ""  # "user" | "platform"
    worker: str = ""  # the evaluation worker's name, for the run's record
    attempt: int = 1
    isolation: dict[str, Any] = field(default_factory=dict)  # what isolated the detector (sandbox.launch.Isolation)
    retryable: bool = False  # a platform failure that sending the shard again can mend (errors.StoreLinkExpired)
    analysis: dict[str, Any] = field(default_factory=dict)  # an analysis protocol's other outputs (JSON)

    def check(self) -> None:
        """Raise MessageError unless the scores are well formed: aligned, finite logits float32 can hold."""
        if self.status not in {"done", "failed", NOT_APPLICABLE}:
            raise MessageError(f"unknown status {self.status!r}")
        if self.status != "done":
            if not self.error:
                raise MessageError(f"a {self.status} shard must say why")
            return
        if len(self.scores) != max(len(self.conditions), 1) * len(self.row_ids):
            raise MessageError("scores must hold one value per row id and condition")
        if any(not (isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s)
                    and abs(s) <= LOGIT_LIMIT) for s in self.scores):
            raise MessageError("scores must be finite logits within float32's range")


@dataclass(frozen=True)
class WorkerAlive(_Message):
    """``worker_alive``: an evaluation worker says it is up, busy or not, every few seconds."""

    worker: str
    evaluator_version: str
    sandbox: str  # "bubblewrap", or why this worker has none
