"""Typed recipe settings: every section and key is declared once, with its type, range and default.

A `Section` is a table of `Setting`s. `normalise_section` checks a recipe's
table against it and fills in the defaults, so the rest of the code reads
`recipe["train"]["epochs"]` without `.get(…, default)`. Every problem is one
`KerasweakError` naming the recipe, the section, the key and the problem, with
the closest known key for a misspelt one.

Declarations are plain frozen dataclasses rather than pydantic models: the
project gains no dependency, and the messages are exactly the one-line form
the CLI prints (pydantic's are multi-line and name no recipe).
"""

import difflib
from dataclasses import dataclass, field
from typing import Callable

from .errors import KerasweakError

REQUIRED = object()  # the default of a setting a recipe must give


@dataclass(frozen=True)
class Setting:
    """One recipe key: accepted types, default, and `check(value) -> problem or None` for its range."""

    types: tuple
    default: object = REQUIRED
    check: Callable | None = None
    doc: str = ""

    def problem(self, value):
        """Why `value` is not acceptable (a phrase), or None. None is accepted where it is the default."""
        if value is None and self.default is None:
            return None
        accepted = self.types
        if isinstance(value, bool) and bool not in accepted:
            return f"must be {type_names(accepted)}, got {value!r}"
        if not isinstance(value, accepted):
            return f"must be {type_names(accepted)}, got {value!r}"
        return self.check(value) if self.check else None


@dataclass(frozen=True)
class Section:
    """A recipe table. `fingerprint`: its values change a run's results, so resuming a folder compares them."""

    settings: dict = field(default_factory=dict)
    fingerprint: bool = True
    free_form: bool = False  # e.g. [paper]: quoted figures, any keys
    doc: str = ""


def type_names(types):
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list", dict: "a table"}
    if float in types:
        types = tuple(t for t in types if t is not int)
    return " or ".join(names.get(t, t.__name__) for t in types)


def did_you_mean(name, known):
    """' (did you mean `x`?)' for the known name closest to a misspelt one, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean `{close[0]}`?)" if close else ""


def unknown_key_error(where, key, known, recipe_name):
    return KerasweakError(f"{where} {key}: unknown key{did_you_mean(key, known)}; known: {', '.join(known)}", recipe_name)


def normalise_section(section_name, section, table, recipe_name):
    """`table` (a recipe's [section_name], possibly missing) checked against `section`, with every default filled in."""
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise KerasweakError(f"[{section_name}] must be a table, got {table!r}", recipe_name)
    if section.free_form:
        return dict(table)
    for key in table:
        if key not in section.settings:
            raise unknown_key_error(f"[{section_name}]", key, list(section.settings), recipe_name)
    values = {}
    for key, setting in section.settings.items():
        if key not in table and setting.default is REQUIRED:
            raise KerasweakError(f"[{section_name}] {key}: missing (it has no default)", recipe_name)
        value = table.get(key, setting.default)
        problem = setting.problem(value) if key in table else None
        if problem:
            raise KerasweakError(f"[{section_name}] {key} {problem}", recipe_name)
        values[key] = list(value) if isinstance(value, tuple) else value
    return values


# ----------------------------------------------------------------------------- range checks

def at_least(low):
    return lambda v: None if v >= low else f"must be >= {low}, got {v!r}"


def positive(v):
    return None if v > 0 else f"must be > 0, got {v!r}"


def fraction(v):
    """In [0, 1)."""
    return None if 0 <= v < 1 else f"must be in [0, 1), got {v!r}"


def unit_interval(v):
    """In [0, 1]."""
    return None if 0 <= v <= 1 else f"must be between 0 and 1, got {v!r}"


def one_of(*choices):
    return lambda v: None if v in choices else f"must be one of {', '.join(map(str, choices))}, got {v!r}"


def list_of(item_types, item_check=None, length=None):
    """A check for a list whose items have `item_types` and pass `item_check`; `length` items if given."""
    def check(values):
        if length is not None and len(values) != length:
            return f"must be a list of {length} items, got {values!r}"
        for item in values:
            if isinstance(item, bool) and bool not in item_types or not isinstance(item, item_types):
                return f"must hold {type_names(item_types)} items, got {item!r}"
            problem = item_check(item) if item_check else None
            if problem:
                return f"item {item!r}: {problem}"
        return None
    return check


def multiple_of_8(v):
    """A non-negative multiple of 8 (a pad on both sides keeping a multiple-of-16 side one)."""
    return None if v >= 0 and v % 8 == 0 else f"must be 0 or a positive multiple of 8, got {v!r}"


def multiple_of_16(v):
    sides = v if isinstance(v, list) else [v]
    if not (1 <= len(sides) <= 2 and all(isinstance(s, int) and not isinstance(s, bool) and s >= 16 and s % 16 == 0
                                         for s in sides)):
        return f"must be a multiple of 16 (>= 16), or [height, width] of such, got {v!r}"
    return None


NUMBER = (int, float)  # a float setting also takes an integer (learning_rate = 1)
INT = (int,)
