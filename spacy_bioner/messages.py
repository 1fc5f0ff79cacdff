"""What the commands print: one-line errors (never a traceback) and counted nouns."""


def first_line(error: BaseException, default: str = "") -> str:
    """The first line of `error`'s message (libraries' messages run to tracebacks), or `default`."""
    return (str(error).strip().splitlines() or [default])[0]


def counted(n: int, noun: str, plural: str = "") -> str:
    """`n` and the noun in its number: "1 record", "2,000 records", "3 entities" (with `plural`)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
