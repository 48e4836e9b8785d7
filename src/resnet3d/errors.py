"""The one exception family the command line prints as a single line instead of a traceback."""


class Resnet3dError(Exception):
    """A user-facing error: bad input file, bad option, bad checkpoint. The message says what and where."""
