"""The exception types that reach users as a one-line message.

:class:`DustvaeError` is a :class:`ValueError` (bad input, as scikit-learn
and NumPy users expect), and :class:`DustvaeFileError`, for a file that is
missing, of the wrong kind or damaged, is an :class:`OSError` as well (as
astropy's and h5py's readers raise), so that callers catch either with the
type they already handle.
"""


class DustvaeError(ValueError):
    """Bad input or a failed precondition the user can fix.

    The command line prints ``dustvae: error: <message>`` and exits with
    status 2. Messages name the problem and what to do about it; they name
    a parameter as a Python caller spells it, in backticks (```lr```), which
    the command line writes as its flag (``--lr``).
    """


class DustvaeFileError(DustvaeError, OSError):
    """A file that cannot be read as what it should be: missing, of another kind, or damaged.

    An :class:`OSError` as well as a :class:`DustvaeError`; its message is
    the whole of ``str(exc)`` (``errno``, ``strerror`` and ``filename`` are
    None), and the command line reports it like any :class:`DustvaeError`.
    """


class DustvaeWarning(UserWarning):
    """Something the user should know but need not fix (a frame assumed, a file astropy repaired).

    Issued with :func:`warnings.warn`, so that Python callers filter it as
    any other warning; the command line prints each as one line,
    ``dustvae: note: <message>``.
    """
