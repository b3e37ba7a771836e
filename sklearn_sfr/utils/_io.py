"""Writing outputs so that a crash never leaves a partial file under the final name."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


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
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    if mode == "w":
        open_kw.setdefault("encoding", "utf-8")
    try:
        with os.fdopen(fd, mode, **open_kw) as fh:
            yield fh
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
