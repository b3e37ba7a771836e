"""Writing outputs so that a crash never leaves a partial file under the final name."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import re
import secrets
import shutil
import socket
from pathlib import Path

from ._stop import raise_if_stopped

# The host goes into temporary names: on a shared file system only this host's process
# table says whether a writer is still alive.
_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "host"


def temporary_path(path, suffix="tmp"):
    """A fresh hidden name beside ``path``: ``.NAME.HOST.PID.RANDOM.tmp``.

    Beside it so that the final :func:`os.replace` stays on one file system (atomic); named
    after the host and process so that :func:`remove_stale_temporaries` can tell a killed
    writer's leftovers from a running writer's file.
    """
    path = Path(path)
    return path.parent / f".{path.name}.{_HOST}.{os.getpid()}.{secrets.token_hex(4)}.{suffix}"


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process: alive
        return True
    return True


def remove_stale_temporaries(path):
    """Delete the temporaries of ``path`` that writers on this host left when they were
    killed (their process is gone); those of running writers and of other hosts stay.

    A writer killed between setting the previous ``path`` aside and moving its new one in
    left no ``path``: the previous one is put back instead of removed.

    Returns
    -------
    list of Path
        What was removed.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_sfr.utils._io import remove_stale_temporaries, temporary_path
    >>> folder = Path(tempfile.mkdtemp())
    >>> mine = temporary_path(folder / "cube.h5")
    >>> _ = mine.write_bytes(b"running")
    >>> dead = folder / mine.name.replace(f".{os.getpid()}.", ".999999999.")
    >>> _ = dead.write_bytes(b"killed")
    >>> [p.name == dead.name for p in remove_stale_temporaries(folder / "cube.h5")]
    [True]
    >>> mine.exists(), dead.exists()
    (True, False)
    """
    path = Path(path)
    pattern = re.compile(
        rf"\.{re.escape(path.name)}\.{re.escape(_HOST)}\.(\d+)\.[0-9a-f]{{8}}\.(tmp|old)"
    )
    stale = []
    with contextlib.suppress(OSError):
        for entry in path.parent.iterdir():
            match = pattern.fullmatch(entry.name)
            if match is not None and not _alive(int(match.group(1))):
                stale.append((entry, match.group(2)))
    asides = [entry for entry, kind in stale if kind == "old"]
    if asides and not os.path.lexists(path):
        # Killed between setting the previous output aside and moving the new one in: the
        # previous output is the user's last result, so it goes back, not away.
        with contextlib.suppress(OSError):
            newest = max(asides, key=lambda p: p.lstat().st_mtime)
            os.rename(newest, path)
            stale = [(entry, kind) for entry, kind in stale if entry != newest]
    removed = []
    for entry, _ in stale:
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_open(path, mode="w", **open_kw):
    """Open a fresh temporary file beside ``path``; on success rename it to ``path``.

    The temporary name lives in the same folder (same file system, so ``os.replace`` is
    atomic) and is created exclusively (``O_EXCL``) with mode 0o666, so the umask sets the usual
    permissions. If the block raises, the temporary file is removed and ``path`` is untouched.

    Parameters
    ----------
    path : str or path-like
        The final file; its folder is created if needed.
    mode : {"w", "wb"}, default="w"
    **open_kw
        Passed to :func:`open` (e.g. ``encoding``, ``newline``).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_sfr.utils._io import atomic_open
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with atomic_open(Path(tmp) / "a.txt") as fh:
    ...         _ = fh.write("done")
    ...     sorted(p.name for p in Path(tmp).iterdir()), (Path(tmp) / "a.txt").read_text()
    (['a.txt'], 'done')
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    if mode == "w":
        open_kw.setdefault("encoding", "utf-8")
    try:
        with os.fdopen(fd, mode, **open_kw) as fh:
            yield fh
        raise_if_stopped()  # a stopped command publishes nothing (see _stop)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path, text):
    """Write ``text`` (UTF-8) to ``path`` through :func:`atomic_open`; returns the Path."""
    with atomic_open(path, "w", newline="") as fh:
        fh.write(text)
    return Path(path)


def write_csv_atomic(frame, path, **to_csv_kw):
    """Write a DataFrame as CSV to ``path`` through :func:`atomic_open`; returns the Path."""
    with atomic_open(path, "w", newline="") as fh:
        frame.to_csv(fh, **to_csv_kw)
    return Path(path)


class StickyErrorFile(io.RawIOBase):
    """A binary file whose first failed write (disk full, file-size limit, I/O error) is
    remembered in :attr:`error`, after which writes are discarded instead of failing.

    HDF5 cannot abandon a file whose writes fail: closing it raises, its objects stay open
    and the interpreter crashes when it frees them (h5py ``File.close()`` on a full disk).
    Handed to ``h5py.File`` (its ``fileobj`` driver), this file never fails a write, so the
    HDF5 file always closes; the writer checks :attr:`error` after each block and raises it,
    and the temporary file is deleted.
    """

    def __init__(self, path, mode="w+b", *, name=None):
        self._raw = open(path, mode, buffering=0)  # noqa: SIM115 - closed in close()
        self.path = Path(path)
        self.name_shown = name or self.path
        self.error = None

    def readable(self):
        return True

    def writable(self):
        return True

    def seekable(self):
        return True

    def seek(self, offset, whence=0):
        return self._raw.seek(offset, whence)

    def tell(self):
        return self._raw.tell()

    def readinto(self, buffer):
        return self._raw.readinto(buffer)

    def write(self, data):
        view = memoryview(data).cast("B")
        if self.error is None:
            try:
                done = 0
                while done < len(view):
                    done += self._raw.write(view[done:])
                return len(view)
            except OSError as exc:
                self.error = exc
        self._raw.seek(len(view), os.SEEK_CUR)
        return len(view)

    def truncate(self, size=None):
        if self.error is None:
            try:
                return self._raw.truncate(size)
            except OSError as exc:
                self.error = exc
        return self.tell() if size is None else size

    def flush(self):
        pass

    def close(self):
        if not self.closed:
            self._raw.close()
        super().close()

    def raise_error(self):
        """Raise the remembered write error (if any) as an OSError naming the file."""
        if self.error is not None:
            exc = self.error
            code = exc.errno if exc.errno is not None else errno.EIO
            reason = {
                errno.ENOSPC: "the disk is full",
                errno.EFBIG: "the file is larger than this process may write (ulimit -f)",
                errno.EDQUOT: "the disk quota is exhausted",
            }.get(code, exc.strerror or str(exc))
            raise OSError(code, f"cannot write {self.name_shown}: {reason}") from exc
