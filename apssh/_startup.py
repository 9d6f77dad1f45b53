"""Start-up cost: import asyncssh without running a compiler and a linker.

When imported, asyncssh looks for optional C libraries (liboqs for post-quantum key exchange,
nettle for UMAC) with ``ctypes.util.find_library``, which on Linux runs ``ldconfig -p`` and,
when the library is absent (liboqs on most machines), ``gcc`` and ``ld``: about 50 ms and
0.05-0.07 s of CPU in subprocesses at every start of every command. :func:`import_asyncssh`
answers a lookup itself (None) when the library is certainly absent: not in the dynamic
linker's cache (/etc/ld.so.cache) nor in a directory of LD_LIBRARY_PATH, LIBRARY_PATH or the
usual library directories; otherwise ``find_library`` runs as usual. The result is the same
(every library that is installed is still found, post-quantum key exchange stays available
wherever liboqs is), without the compiler.
"""

from __future__ import annotations

import glob
import os
import sys

_LIBRARY_DIRS = ("/lib", "/lib64", "/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64")


def _library_dirs() -> list[str]:
    dirs = [d for var in ("LD_LIBRARY_PATH", "LIBRARY_PATH") for d in os.environ.get(var, "").split(":") if d]
    dirs += _LIBRARY_DIRS
    dirs += [sub for base in _LIBRARY_DIRS for sub in glob.glob(f"{base}/*-linux-gnu*")]
    # /lib is /usr/lib on merged-/usr systems: each directory once
    return list(dict.fromkeys(os.path.realpath(d) for d in dirs))


def library_may_be_present(name: str, cache: bytes | None = None,
                           listings: dict[str, list[str]] | None = None) -> bool:
    """False only when ``lib<name>`` is in none of the places ``find_library`` looks: the linker
    cache ``cache`` (default: /etc/ld.so.cache read now), LD_LIBRARY_PATH, LIBRARY_PATH and the
    usual library directories with their multiarch subdirectories.  ``listings`` keeps each
    directory's file names between calls (one listing per directory for several names)."""
    if cache is None:
        try:
            with open("/etc/ld.so.cache", "rb") as file:
                cache = file.read()
        except OSError:
            return True  # no cache to ask: let find_library decide
    if f"lib{name}.".encode() in cache:
        return True
    if listings is None:
        listings = {}
    prefix = f"lib{name}."
    for directory in _library_dirs():
        names = listings.get(directory)
        if names is None:
            try:
                names = listings[directory] = os.listdir(directory)
            except OSError:
                names = listings[directory] = []
        if any(entry.startswith(prefix) for entry in names):
            return True
    return False


def import_asyncssh() -> None:
    """Import asyncssh (once per process), with ``find_library`` answering None at once for a
    library that is certainly absent (see the module doc); restored afterwards."""
    if "asyncssh" in sys.modules or not sys.platform.startswith("linux"):
        return
    import ctypes.util  # noqa: PLC0415

    try:
        with open("/etc/ld.so.cache", "rb") as file:
            cache = file.read()
    except OSError:
        cache = None
    real = ctypes.util.find_library
    listings: dict[str, list[str]] = {}

    def find_library(name):
        if cache is not None and not library_may_be_present(name, cache, listings):
            return None
        return real(name)

    ctypes.util.find_library = find_library
    try:
        import asyncssh  # noqa: F401, PLC0415
    finally:
        ctypes.util.find_library = real


import_asyncssh()
