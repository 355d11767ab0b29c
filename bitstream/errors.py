"""The one exception type that reading a .cdc file may raise.

Everything that parses untrusted bytes (the container, the entropy decoder) raises
`CdcFormatError` and nothing else, so callers (the CLI above all) can turn any bad
input into a one-line message without catching broad exception classes.
"""


class CdcFormatError(ValueError):
    """The bytes are not a valid .cdc file (or not one this version can read)."""
