"""Old keyword spellings of the contrastive package (kept for one release with a FutureWarning)."""
from __future__ import annotations

import warnings

__all__ = ["resolve_renamed", "warn_moved_module"]


def _is_default(value, default) -> bool:
    if value is default:
        return True
    try:
        return type(value) is type(default) and bool(value == default)
    except Exception:  # e.g. arrays: not a default
        return False


def resolve_renamed(owner, deprecated, renames, values, defaults, stacklevel=3) -> dict:
    """Map deprecated keyword arguments to their new names.

    Parameters
    ----------
    owner : str
        The function or class whose keywords these are (used in messages).
    deprecated : dict
        The extra keyword arguments the caller passed (``**deprecated`` of the signature).
    renames : dict
        Old name -> new name.
    values : dict
        New name -> value received.
    defaults : dict
        New name -> its default (a value received equal to its default counts as not given).
    stacklevel : int, default 3
        Passed to :func:`warnings.warn`; 3 points at the caller of the function calling this one.

    Returns
    -------
    dict
        New name -> value to use.

    Raises
    ------
    TypeError
        For a keyword that is neither current nor a known old spelling (as Python would).
    ValueError
        When an old spelling and its new name are both given.
    """
    out = dict(values)
    for old, value in deprecated.items():
        if old not in renames:
            raise TypeError(f"{owner} got an unexpected keyword argument {old!r}.")
        new = renames[old]
        if not _is_default(values[new], defaults[new]):
            raise ValueError(f"{owner}: pass either {new!r} or its deprecated spelling {old!r}, not both; "
                             f"got {new}={values[new]!r} and {old}={value!r}.")
        warnings.warn(f"{owner}: the keyword {old!r} is deprecated and will be removed in a future release; "
                      f"use {new!r}.", FutureWarning, stacklevel=stacklevel)
        out[new] = value
    return out


def warn_moved_module(old, new, stacklevel=3):
    """FutureWarning for a module that moved: ``old`` still imports, ``new`` is where it lives now.

    ``stacklevel=3`` points at the ``import`` statement of the user when called from the top
    level of the shim module (frames: this function, the shim module, the importer's frames
    inside importlib are skipped by Python's warning machinery for frozen importlib).
    """
    warnings.warn(f"{old} has moved to {new}; import it from there ({old} will be removed in a future release).",
                  FutureWarning, stacklevel=stacklevel)
