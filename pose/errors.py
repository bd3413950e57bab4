"""Exception types shared by every posedrive stage.

Every user-facing failure raises a subclass of :class:`PosedriveError` whose message is one line that
names the offending input and says what to do. The CLI prints that line and exits with status 2.
"""

from __future__ import annotations


class PosedriveError(Exception):
    """Base class of all posedrive errors that a user can act on."""


class InputError(PosedriveError):
    """An input file or argument is missing, unreadable or malformed."""


class VideoError(InputError):
    """A video or frame folder cannot be opened, is corrupt, truncated or has no frames."""


class PoseFileError(InputError):
    """A saved pose file is malformed or uses another schema version."""


class NoPersonError(InputError):
    """No person was detected where one is required (e.g. the reference image)."""


class DetectorError(PosedriveError):
    """A pose detector cannot be created (missing package or annotator files)."""


class WeightsError(PosedriveError):
    """Model weights are missing, incomplete, of the wrong format or the wrong shape."""


class OutputError(PosedriveError):
    """An output path cannot be written, or exists and overwriting was not allowed."""


class ConfigError(PosedriveError):
    """A configuration file or value is invalid."""
