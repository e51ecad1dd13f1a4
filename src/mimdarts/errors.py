"""Exceptions that the CLI turns into a one-line message and a non-zero exit."""


class MimdartsError(Exception):
    """Base class for user-facing errors (bad config, bad genotype, missing data...)."""


class ConfigError(MimdartsError, ValueError):
    """A configuration value, key or preset is invalid."""


class GenotypeError(MimdartsError, ValueError):
    """A genotype string, file or name is invalid."""


class DataError(MimdartsError):
    """A dataset cannot be found or read."""


class RunDirError(MimdartsError):
    """A run folder cannot be created, written or read."""


class DivergenceError(MimdartsError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class Preempted(MimdartsError):
    """A SIGTERM or SIGUSR1 stopped the run at a step boundary after a checkpoint; rerunning
    with ``--resume auto`` continues it."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
