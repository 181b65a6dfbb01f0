"""The cyclic garbage collector off for a small command, from the first import on.

Why a module of its own: ``python -m medins calc`` imports Typer, Polars and medins' engine (~100,000 objects)
before :func:`medins.cli.main` runs; with the collector on, those imports trigger collections that walk every
object created so far, for garbage that is not there (~3 % of a ``calc``'s instructions). ``medins/__main__.py``
turns it off here, before importing anything else; :func:`medins.cli.main` does the same for other callers.
Nothing but the standard library is imported here.
"""

from __future__ import annotations

import gc

#: Commands that settle or show a handful of rows: they allocate tens of thousands of small objects (imports,
#: schema classes, Polars expressions), none of them cyclic garbage worth collecting.
SMALL_COMMANDS = frozenset({"calc"})

#: What :func:`quiet_gc` registered with atexit already (once per process is enough).
_AT_EXIT: list = []


def quiet_gc(command: list[str]) -> bool:
    """Turn the cyclic garbage collector off for a small command; whether it was on (to turn it on again).

    Why: during start-up CPython runs a generation-0 collection every 700 allocations and older ones now
    and then, walking every object created so far, for garbage that is not there. Reference counting
    still frees everything acyclic at once. ``batch`` and the other commands, whose memory matters, keep
    the collector. The caller turns it on again when it is done (:func:`medins.cli.main` does when it
    returns), so a program that calls ``main()`` (tests, embedding) gets the state it had.

    The interpreter's last collection at exit runs even with the collector off and walks every object
    of the imports once more (a fifth of ``calc``'s CPU): at exit, before it, the objects are frozen
    (``gc.freeze``: out of its sight). Registered with :mod:`atexit`, so it only happens when the process
    ends anyway.
    """
    if not command or command[0] not in SMALL_COMMANDS or not gc.isenabled():
        return False
    gc.disable()
    if gc.freeze not in _AT_EXIT:
        import atexit

        atexit.register(gc.freeze)  # atexit functions run before the interpreter's last collection
        _AT_EXIT.append(gc.freeze)
    return True
