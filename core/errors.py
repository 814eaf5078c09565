"""Exception hierarchy shared by core/, models/ and the Processing adapters.

Algorithms translate every :class:`DeepProspectError` into a ``QgsProcessingException`` so users see
the message, never a traceback.
"""


class DeepProspectError(Exception):
    """Base class of every error DeepProspect raises on purpose."""


class InputError(DeepProspectError):
    """The user's input cannot produce a correct result; the message says what to change."""


class ResourceError(DeepProspectError):
    """The job would need more memory or disk than the machine has."""


class ModelError(DeepProspectError):
    """A model file is corrupt, foreign, or does not match the evidence it is applied to."""


class Cancelled(DeepProspectError):  # noqa: N818 - a state, not a fault
    """The user cancelled the run; nothing was written."""

    def __init__(self, message: str = "Cancelled by the user; no output was written.") -> None:
        super().__init__(message)
