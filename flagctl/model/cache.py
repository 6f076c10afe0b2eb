"""The manifest cache: a validated manifest, kept so the next command need not validate again.

Validating a manifest means importing PyYAML and pydantic and building their validators:
about 100 ms, more than the whole of ``flagctl kill``'s database work. So once a manifest
has been read and validated, the result is pickled into the cache folder together with the
manifest's exact text and a note of the code that validated it (the Python, and the model
modules' size and modification time). A command reading the same text with the same code
loads it back without importing either; the entry's name is only a checksum to find it by,
the comparison is of the whole text. Any edit to the manifest is validated anew (and an
invalid edit reported), never served stale.

The folder is ``FLAGCTL_CACHE_DIR``, else the user's cache folder (``$XDG_CACHE_HOME/flagctl``
or ``~/.cache/flagctl`` on Linux; elsewhere where platformdirs says). ``FLAGCTL_CACHE_DIR=``
(empty) turns the cache off. A pickle is code to run: the cache is only read from a folder
and files owned by the user running flagctl and writable by no one else, and written the
same way. The cache can never fail a command: anything wrong with it (unreadable, corrupt,
written by other code) is a miss, and a manifest that cannot be stored is simply not stored.
"""

from __future__ import annotations

import os
import pickle
import stat
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

KEEP = 32  # entries kept; the oldest beyond these are removed when one is written


@dataclass(frozen=True)
class ManifestCache:
    folder: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ManifestCache | None:
        """The cache the environment asks for (None: turned off with ``FLAGCTL_CACHE_DIR=``)."""
        given = environ.get("FLAGCTL_CACHE_DIR")
        if given is not None:
            return cls(Path(given)) if given.strip() else None
        try:
            return cls(_user_cache_folder(environ))
        except (KeyError, OSError, RuntimeError):  # no home folder to be found: no cache
            return None

    def get(self, text: str, path: str) -> Any:
        """The manifest validated from exactly this text, if cached, with ``path`` as its path
        (None: not cached)."""
        code = _code_version()
        entry = self._entry(code, text)
        try:
            if not (_private(self.folder) and _private(entry)):
                return None
            with entry.open("rb") as file:
                stored_code, stored_text, found = pickle.load(file)  # our own file, checked private above
        except Exception:  # a cache never fails a command: corrupt, foreign or vanished is a miss
            return None
        if (stored_code, stored_text) != (code, text) or not hasattr(found, "switches"):
            return None
        return replace(found, path=path, source=text)

    def put(self, text: str, manifest: Any) -> None:
        """Keep a validated manifest; quietly nothing if the folder is not ours or not writable."""
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            if not _private(self.folder):
                return
            import tempfile

            code = _code_version()
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".manifest-", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as file:
                    pickle.dump((code, text, manifest), file, protocol=pickle.HIGHEST_PROTOCOL)
                os.replace(temporary, self._entry(code, text))
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._prune()
        except Exception:  # never fail the command that validated the manifest
            return

    def _entry(self, code: str, text: str) -> Path:
        """Where the entry for this text and code is (a checksum: the entry holds both in full)."""
        data = text.encode("utf-8", "surrogatepass")
        return (
            self.folder
            / f"manifest-{zlib.crc32(code.encode()):08x}-{zlib.crc32(data):08x}-{len(data)}.pickle"
        )

    def _prune(self) -> None:
        entries = sorted(self.folder.glob("manifest-*.pickle"), key=lambda p: p.stat().st_mtime_ns)
        for old in entries[:-KEEP]:
            old.unlink(missing_ok=True)


def _private(path: Path) -> bool:
    """Owned by whoever runs flagctl, writable by no one else, and not a symbolic link."""
    info = path.lstat()
    return (
        info.st_uid == os.getuid()
        and not stat.S_ISLNK(info.st_mode)
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _code_version() -> str:
    """The Python and the model modules as installed (and flagctl's ``__init__``, which holds
    its version): a pickle is read back only by the code that wrote it."""
    folder = Path(__file__).parent
    files = [
        folder.parent / "__init__.py",
        *(folder / n for n in sorted(os.listdir(folder)) if n.endswith(".py")),
    ]
    parts = [sys.version.split()[0]]
    for file in files:
        info = file.stat()
        parts.append(f"{file.name}:{info.st_size}:{info.st_mtime_ns}")
    return ";".join(parts)


def _user_cache_folder(environ: Mapping[str, str]) -> Path:
    if sys.platform.startswith("linux"):  # the XDG rule platformdirs applies, without importing it
        base = environ.get("XDG_CACHE_HOME", "").strip()
        return (Path(base) if os.path.isabs(base) else Path.home() / ".cache") / "flagctl"
    import platformdirs

    return Path(platformdirs.user_cache_dir("flagctl"))
