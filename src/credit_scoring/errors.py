"""What a stage reports in one line and exit code 1, not a traceback: input the user can fix."""


class InputError(Exception):
    """A table, file, source or spec is wrong; the message names which, and where."""
