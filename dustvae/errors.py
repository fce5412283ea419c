"""The one exception type that reaches users as a one-line message."""


class DustvaeError(Exception):
    """Bad input or a failed precondition the user can fix.

    The command line prints ``dustvae: error: <message>`` and exits with
    status 2. Messages name the problem and what to do about it.
    """
