"""One-line error messages: the commands report an error in one line, never a traceback."""


def first_line(error: BaseException, default: str = "") -> str:
    """The first line of `error`'s message (libraries' messages run to tracebacks), or `default`."""
    return (str(error).strip().splitlines() or [default])[0]
