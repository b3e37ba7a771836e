"""What a command may write and replace: the one rule every output of the library follows.

- A **folder** is replaced only if this library wrote it: it holds our marker file
  (:data:`MARKER`), a JSON manifest of every file we put there, and nothing else. Anything a
  user added (or a folder without our marker) is refused, never deleted, with or without
  ``overwrite``. An empty folder counts as new.
- A **file** (a cube) is replaced only with ``overwrite`` and only if it is ours: ``is_ours``
  says so from its content (a cube's ``written_by`` attribute), never from its name.
- An output that **equals, contains or lies inside an input** (the cube, a FITS file, a data
  folder, a storage file) is refused before any work.
- An output that **cannot be written** (a folder where a file is expected, a name too long
  for its temporary name, a folder without write permission, a disk too small for the
  estimate) is refused before the work, not after an hour of it.

:class:`OutputFolder` builds a folder under a temporary name beside the final one, writes the
marker with the manifest, and renames it into place (moving the earlier one aside first), so
an interrupted run changes nothing.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

from ._io import remove_stale_temporaries, temporary_path
from ._stop import raise_if_stopped, stop_deferred

#: The marker file of every folder this library writes; its manifest lists the files we wrote.
MARKER = ".sklearn-sfr.json"

#: Longest file name most file systems take (ext4, APFS, NTFS); ``os.pathconf`` says otherwise.
_NAME_MAX = 255


class OutputError(ValueError):
    """An output the library refuses to write (before doing any work); nothing was changed."""


def _version():
    from .._version import __version__

    return __version__


def _resolve(path):
    return Path(os.path.abspath(os.path.expanduser(path))).resolve()


def _name_max(folder):
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError, AttributeError):  # Windows has no pathconf
        return _NAME_MAX


def _existing_ancestor(path):
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path(path.anchor)


def check_not_overlapping(out, inputs, *, what="output"):
    """Refuse an output that equals, contains or lies inside any of ``inputs``.

    Parameters
    ----------
    out : path-like
        The output file or folder.
    inputs : iterable of path-like or None
        Files and folders the command reads (None entries are skipped).
    what : str, default="output"
        How the messages call the output (e.g. ``"--out"``).

    Raises
    ------
    OutputError
        Naming both paths.

    Examples
    --------
    >>> from sklearn_sfr.utils._outputs import check_not_overlapping
    >>> check_not_overlapping("rep", ["rep/cube.h5"])
    Traceback (most recent call last):
    ...
    sklearn_sfr.utils._outputs.OutputError: the output rep contains the input rep/cube.h5: ...
    """
    target = _resolve(out)
    for given in inputs:
        if given is None:
            continue
        source = _resolve(given)
        if target == source:
            relation = "is"
        elif target in source.parents:
            relation = "contains"
        elif source in target.parents:
            relation = "lies inside"
        else:
            continue
        raise OutputError(
            f"the {what} {out} {relation} the input {given}: writing it could destroy the "
            "input; choose another output"
        )


def check_writable(path, *, size=None):
    """Refuse, before any work, an output ``path`` that could not be written.

    The nearest existing ancestor must be a folder the process may write in, the temporary
    name beside ``path`` (:func:`~sklearn_sfr.utils._io.temporary_path`) must fit the file
    system's name limit, and, when ``size`` (bytes) is given, the file system must have that
    much free space (and the process's file-size limit must allow it).

    Raises
    ------
    OutputError
        Saying what is wrong with which path.
    """
    path = Path(path)
    # The temporary goes beside the output: its folder (or the nearest that exists) counts.
    ancestor = _existing_ancestor(_resolve(path).parent)
    if not ancestor.is_dir():
        raise OutputError(f"cannot write {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: no permission to write in {ancestor}")
    limit = _name_max(ancestor)
    longest = len(temporary_path(path, suffix="old").name.encode())
    if longest > limit:
        raise OutputError(
            f"the name {path.name!r} is too long: with the temporary name it is written under "
            f"it needs {longest} characters, the file system allows {limit}; choose a shorter one"
        )
    if size is not None:
        check_free_space(ancestor, size, what=str(path))


def check_free_space(folder, size, *, what):
    """Refuse writing about ``size`` bytes under ``folder`` when the disk (or the process's
    file-size limit) cannot take them; the message gives the estimate."""
    free = shutil.disk_usage(_existing_ancestor(_resolve(folder))).free
    if size > free:
        raise OSError(
            errno.ENOSPC,
            f"{what} needs about {_bytes(size)} and the disk has {_bytes(free)} free; "
            "free some space or choose another place",
        )
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (ImportError, OSError, ValueError):  # Windows
        return
    if soft != resource.RLIM_INFINITY and size > soft:
        raise OSError(
            errno.EFBIG,
            f"{what} needs about {_bytes(size)} and this process may write files of at most "
            f"{_bytes(soft)} (ulimit -f)",
        )


def _bytes(n):
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def check_output_file(path, *, overwrite, is_ours, inputs=(), size=None, kind="file"):
    """Refuse, before any work, a file output that must not be written.

    Parameters
    ----------
    path : path-like
        The file to write.
    overwrite : bool
        Whether an existing file of ours may be replaced.
    is_ours : callable
        ``is_ours(path) -> bool``: whether an existing file there was written by this library
        (from its content). Anything else is never replaced.
    inputs : iterable of path-like, default=()
        What the command reads (see :func:`check_not_overlapping`).
    size : int, default=None
        Estimated bytes, checked against the free space.
    kind : str, default="file"
        What the file is, for the messages ("cube", "ingest report").

    Raises
    ------
    OutputError, FileExistsError, IsADirectoryError, OSError
    """
    path = Path(path)
    check_not_overlapping(path, inputs)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the name of the {kind} file to write")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise FileExistsError(
                f"{path} exists; pass overwrite=True (--overwrite) to replace it"
            )
        if path.is_symlink() or not path.is_file() or not is_ours(path):
            raise FileExistsError(
                f"{path} exists and was not written by sklearn-sfr (as its {kind}): it is not "
                "replaced, even with --overwrite; choose another name"
            )
    check_writable(path, size=size)


# -- folders ---------------------------------------------------------------------------------
def read_marker(folder):
    """The marker of a folder this library wrote (a dict), or None."""
    try:
        record = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("written_by") != "sklearn-sfr":
        return None
    files = record.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return record


def _listing(folder):
    """Every file and link under ``folder``, as POSIX paths relative to it (marker excluded)."""
    folder = Path(folder)
    out = []
    for root, dirs, files in os.walk(folder):
        base = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            rel = (base / name).as_posix()
            if rel != MARKER:
                out.append(rel)
    return sorted(out)


def _foreign(folder, record):
    """The files under ``folder`` that its manifest does not list (a user's, not ours)."""
    ours = set(record["files"])
    return [f for f in _listing(folder) if f not in ours]


def _shown(names, k=3):
    shown = ", ".join(names[:k])
    return shown + (f" and {len(names) - k} more" if len(names) > k else "")


def check_output_folder(out, *, overwrite, inputs=(), update=False, what="output folder"):
    """Refuse, before any work, a folder output that must not be written or replaced.

    A folder that does not exist, or is empty, is fine. An existing one must carry our marker,
    hold only the files its manifest lists, and ``overwrite`` (or ``update``, for a command
    that rewrites its own folder) must be given.

    Parameters
    ----------
    out : path-like
    overwrite : bool
    inputs : iterable of path-like, default=()
    update : bool, default=False
        The command rewrites this folder in place, keeping what is there (``report``): the
        folder must exist and be ours; files a user added are kept, not refused.
    what : str, default="output folder"

    Returns
    -------
    dict or None
        The marker of the existing folder, or None for a new (or empty) one.

    Raises
    ------
    OutputError, FileExistsError, NotADirectoryError
    """
    out = Path(out)
    check_not_overlapping(out, inputs, what=what)
    record = None
    if out.exists() or out.is_symlink():
        if out.is_symlink():
            # Replacing it would replace the link, and writing through it another folder.
            raise NotADirectoryError(
                f"{out} is a symbolic link; give the folder it points to, or another {what}"
            )
        if not out.is_dir():
            raise NotADirectoryError(f"{out} exists and is not a folder; choose another {what}")
        if any(out.iterdir()) or update:
            record = read_marker(out)
            if record is None:
                raise FileExistsError(
                    f"{out} exists and holds files that sklearn-sfr did not write "
                    f"({_shown(_listing(out)) or 'no marker ' + MARKER}): it is never replaced; "
                    f"choose another {what}"
                )
            foreign = [] if update else _foreign(out, record)
            if foreign:
                raise FileExistsError(
                    f"{out} was written by sklearn-sfr but now also holds files it did not "
                    f"write ({_shown(foreign)}): it is not replaced; move them or choose another "
                    f"{what}"
                )
            if not (overwrite or update):
                raise FileExistsError(
                    f"{out} exists (written by sklearn-sfr); pass overwrite=True (--overwrite) "
                    "to replace it"
                )
    elif update:
        raise FileNotFoundError(f"{out} does not exist")
    check_writable(out)
    return record


def _link_or_copy(source, target):
    """Hard-link (instant, no space: a large cube inside a report folder is not copied)."""
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, target, follow_symlinks=False)


class OutputFolder:
    """Build an output folder under a temporary name and publish it with our marker.

    ``with OutputFolder(out, kind="study", overwrite=...) as tmp:`` checks ``out`` at once
    (:func:`check_output_folder`), makes the temporary folder beside it, and on a clean exit
    writes the marker (the manifest of what is in ``tmp``), checks ``out`` again (a user may
    have added a file during a long run) and renames ``tmp`` into place. On an error or an
    interrupt the temporary folder is removed and ``out`` is untouched.

    With ``update=True`` the temporary folder starts as a copy of ``out`` (hard links), and
    files a user added there stay, outside the manifest.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn_sfr.utils._outputs import MARKER, OutputFolder
    >>> out = Path(tempfile.mkdtemp()) / "report"
    >>> with OutputFolder(out, kind="example") as tmp:
    ...     _ = (tmp / "a.txt").write_text("done")
    >>> sorted(p.name for p in out.iterdir()) == sorted(["a.txt", MARKER])
    True
    """

    def __init__(self, out, *, kind, overwrite=False, inputs=(), update=False):
        self.out = Path(out)
        self.kind = kind
        self.overwrite = overwrite
        self.inputs = tuple(inputs)
        self.update = update
        self.before = check_output_folder(
            self.out, overwrite=overwrite, inputs=self.inputs, update=update
        )
        self.tmp = None
        self._kept = set()

    def __enter__(self):
        self.out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.out)  # what a killed run left
        self.tmp = temporary_path(self.out)
        self.tmp.mkdir()
        try:
            if self.update:
                shutil.copytree(
                    self.out, self.tmp, dirs_exist_ok=True, symlinks=True,
                    copy_function=_link_or_copy,
                )  # fmt: skip
                (self.tmp / MARKER).unlink(missing_ok=True)
                self._kept = set(_foreign(self.out, self.before))
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        try:
            self._publish()
        except BaseException:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise
        return False

    def _publish(self):
        from ._io import write_text_atomic

        files = [f for f in _listing(self.tmp) if f not in self._kept]
        record = {
            "written_by": "sklearn-sfr",
            "version": _version(),
            "kind": self.kind,
            "files": files,
        }
        write_text_atomic(self.tmp / MARKER, json.dumps(record, indent=1) + "\n")
        # Again at the end: during a long run someone may have put a file there.
        check_output_folder(
            self.out, overwrite=self.overwrite, inputs=self.inputs, update=self.update
        )
        raise_if_stopped()  # a stopped command publishes nothing (see _stop)
        if not self.out.exists():
            os.replace(self.tmp, self.out)
            return
        # A signal between the two renames would leave the old output aside and none in its
        # place, one during the removal a part of it: a stop waits for the end (a killed
        # process's aside is put back by remove_stale_temporaries).
        old = temporary_path(self.out, suffix="old")
        with stop_deferred():
            os.replace(self.out, old)
            try:
                os.replace(self.tmp, self.out)
            except BaseException:
                os.replace(old, self.out)
                raise
            shutil.rmtree(old, ignore_errors=True)


def ensure_output_folder(out, *, kind, inputs=()):
    """Create (or reuse) a folder a command adds files to over several runs (``tune``).

    The folder must be new, empty or ours (any kind); it gets our marker, and the files the
    command writes are added to the manifest with :func:`add_to_manifest`.
    """
    out = Path(out)
    check_not_overlapping(out, inputs, what="output folder")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} exists and is not a folder; choose another output")
    if out.is_dir() and any(out.iterdir()):
        if read_marker(out) is None:
            raise FileExistsError(
                f"{out} exists and holds files that sklearn-sfr did not write "
                f"({_shown(_listing(out))}): "
                "choose another output folder"
            )
        return out
    check_writable(out)
    out.mkdir(parents=True, exist_ok=True)
    add_to_manifest(out, [], kind=kind)
    return out


def add_to_manifest(out, names, *, kind):
    """Record ``names`` (relative to ``out``) as files this library wrote in ``out``."""
    from ._io import write_text_atomic

    record = read_marker(out) or {"written_by": "sklearn-sfr", "kind": kind, "files": []}
    record["version"] = _version()
    record["files"] = sorted(set(record["files"]) | {Path(n).as_posix() for n in names})
    write_text_atomic(Path(out) / MARKER, json.dumps(record, indent=1) + "\n")


def check_own_file(out, name):
    """Refuse writing ``name`` in the marked folder ``out`` when a file of that name is there
    and the manifest does not list it (a user's file)."""
    record = read_marker(out)
    path = Path(out) / name
    if path.exists() and (record is None or Path(name).as_posix() not in record["files"]):
        raise FileExistsError(f"{path} was not written by sklearn-sfr: it is not replaced")
