"""The one exception type for mistakes a user can fix."""


class UserError(Exception):
    """A bad input or config value; the message names the file or key and states the fix.

    The command-line entry points print these without a traceback.
    """
