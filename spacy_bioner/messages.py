"""What the commands print: one-line errors (never a traceback), counted nouns and short lists."""

from typing import Sequence

from thinc.config import ConfigValidationError


def first_line(error: BaseException, default: str = "") -> str:
    """The first line of `error`'s message (libraries' messages run to tracebacks), or `default`;
    of a config error (spaCy's, confection's), its title and first error, which its first line lacks."""
    if isinstance(error, ConfigValidationError) and error.errors:
        first = error.errors[0]
        # As confection writes each error: the parent section first, then the setting's path.
        where = " -> ".join(str(part) for part in [*([error.parent] if error.parent else []), *first.get("loc", ())])
        return ": ".join(filter(None, [error.title, f"{where} {first.get('msg', '')}".strip()]))
    return (str(error).strip().splitlines() or [default])[0]


def listed(items: Sequence[str], most: int = 3) -> str:
    """The first `most` of `items`, joined, and how many more: "a, b, c and 2 more"."""
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def check_choice(value: str, choices: Sequence[str], what: str, hint: str = "") -> str:
    """`value` if it is one of `choices`, else a ValueError naming `what` it is and the choices
    ("Unknown tag scheme 'BIOES': use one of ['IOB2', 'BILUO']"), then `hint`."""
    if value not in choices:
        raise ValueError(f"Unknown {what} {value!r}: use one of {list(choices)}{hint}.")
    return value


def counted(n: int, noun: str, plural: str = "") -> str:
    """`n` and the noun in its number: "1 record", "2,000 records", "3 entities" (with `plural`)."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
