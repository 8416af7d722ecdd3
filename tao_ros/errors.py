"""The error hierarchy. Every message says what went wrong and what to do about it."""


class TaoRosError(Exception):
    """Base class of every error raised on purpose by tao_ros."""


class ConfigError(TaoRosError, ValueError):
    """A configuration key or value is not allowed; the message names key, value and what is allowed."""


class PluginError(TaoRosError):
    """A plugin is unknown, failed to load, or broke its contract."""


class ModelFileError(TaoRosError):
    """A fitted model file is missing, tampered with, or does not match the configuration."""


class InputError(TaoRosError, ValueError):
    """Input data (frames, sources, messages, annotation files) is unusable as given."""
