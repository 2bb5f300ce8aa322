"""The evaluation library's error vocabulary.

Every error carries a message in plain words that is shown to the submitter as is. ``UserFault`` means
the uploaded detector (or its declared settings) is at fault and retrying will not help; ``PlatformFault``
means something on our side failed (storage, data) and the run may be retried.
"""
from __future__ import annotations


class EvaluationError(Exception):
    """Base class of every error raised by ``evaluation``."""

    kind = "platform"
    retryable = False  # whether the platform sends the shard again by itself (with fresh links)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UserFault(EvaluationError):
    """The submitted artifact or its settings are at fault."""

    kind = "user"


class PlatformFault(EvaluationError):
    """Storage, data or the evaluator failed; not the submitter's fault."""

    kind = "platform"


class ArtifactRejected(UserFault):
    """An upload is refused before it is stored: wrong format, pickled checkpoint, too large."""


class DetectorLoadError(UserFault):
    """The artifact could not be loaded as a detector."""


class DetectorOutputError(UserFault):
    """The detector ran but its output breaks the contract (shape, non-finite values)."""


class DatasetError(PlatformFault):
    """A dataset folder or manifest is missing, malformed or does not match its hash."""


class DetectorTimeout(UserFault):
    """The detector did not answer within its time budget; its process was stopped."""


class DetectorCrash(UserFault):
    """The detector's process ended abruptly (a signal, an abort) or broke the scorer's protocol."""


class DetectorCapabilityError(UserFault):
    """A protocol needs what this detector cannot give (features, gradients)."""


class StoreLinkExpired(PlatformFault):
    """A presigned link of the shard's message expired before the worker used it; the shard is sent again."""

    retryable = True


class NotApplicable(EvaluationError):
    """The detector lacks a capability the protocol needs: the protocol does not apply, which is no failure."""
