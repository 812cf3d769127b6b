"""The one exception type for mistakes a user can fix.

The CLI prints a `DeblurError` as a single line and exits non-zero; anything else that escapes is a
bug in deblur and keeps its traceback, so the two are never confused.
"""


class DeblurError(Exception):
    """A problem with the user's input (config, data, paths, checkpoints), described in one line."""


class ConfigError(DeblurError):
    """A config key, value or type that cannot be used; the message names the key."""


class DataError(DeblurError):
    """Dataset files that are missing, malformed or inconsistent; the message names the file."""
