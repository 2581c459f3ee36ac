"""Exceptions that carry the reason a user needs; the CLI turns each into one line and an exit code."""


class FraudpipeError(Exception):
    """Base class: anything fraudpipe refuses to do, with a message fit for one line of output."""


class ArtifactError(FraudpipeError):
    """An artifact folder failed verification. The message names the file and the reason."""

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


class DataValidationError(FraudpipeError):
    """Training data failed the validation gate (schema, ranges, drift or label consistency)."""


class ConfigError(FraudpipeError):
    """A setting or key file is missing, unreadable or inconsistent."""
