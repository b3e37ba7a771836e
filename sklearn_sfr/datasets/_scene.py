"""``load_scene``: the Scene classification set (Bird et al.), video frames plus MFCC audio.

The Kaggle release is a folder holding ``dataset.csv`` and ``images/<class>/<class><N>.png``.
Each CSV row names one frame (``IMAGE``, a path relative to the folder), the 104 MFCC values of
the second of audio around it (13 coefficients x 8 windows), and two labels: ``CLASS1``
(OUTDOORS / INDOORS) and ``CLASS2`` (the scene). The column names' case is not documented, so
columns are matched case-insensitively and the MFCC columns by prefix or, failing that, by
position. Images are decoded with Pillow, converted to RGB (an RGBA or palette PNG too) and
resized with an anti-aliasing filter; for large sets they are decoded only when a slice of
them is turned into an array (:class:`LazyImageArray`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

#: The CSV file of a Scene set.
CSV_NAME = "dataset.csv"

#: The nine CLASS2 strings of the Kaggle CSV and whether each is indoors (CLASS1).
SCENE_CLASSES = {
    "BEACH": "OUTDOORS",
    "CITY": "OUTDOORS",
    "CLASSROOM": "INDOORS",
    "FOOTBALL-MATCH": "OUTDOORS",
    "FOREST": "OUTDOORS",
    "GROCERY-STORE": "INDOORS",
    "JUNGLE": "OUTDOORS",
    "RESTAURANT": "INDOORS",
    "RIVER": "OUTDOORS",
}

#: MFCC values per row in the real set: 13 coefficients x 8 windows per second.
N_MFCC = 104

#: Above this many bytes of decoded float32 pixels, ``lazy="auto"`` decodes on demand.
LAZY_BYTES = 2 * 2**30

#: How many bad rows or missing files an error message lists before "...".
_LIST_AT_MOST = 10

_LABEL_COLUMNS = ("IMAGE", "CLASS1", "CLASS2")


def _listing(items):
    shown = ", ".join(str(i) for i in items[:_LIST_AT_MOST])
    return shown + (", ..." if len(items) > _LIST_AT_MOST else "")


def _size_of(image_size):
    """``(height, width)`` from an int, a pair, or None (keep the files' own size)."""
    if image_size is None:
        return None
    size = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s >= 1 for s in size):
        raise ValueError(
            f"image_size must be a positive int, a (height, width) pair or None, got "
            f"{image_size!r}"
        )
    return int(size[0]), int(size[1])


def read_scene_image(path, size=None):
    """One frame as float32 RGB in [0, 1], shape (3, H, W), resized to ``size`` = (H, W).

    Any PNG mode is accepted: RGBA drops its alpha channel, grey and palette images are
    expanded to RGB. Resizing uses Pillow's Lanczos filter, which widens its kernel when
    shrinking, so small thumbnails of large frames do not alias.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"cannot read image {path}: {exc}") from exc
    if size is not None and rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.LANCZOS)
    return np.moveaxis(np.asarray(rgb, dtype=np.float32) / 255.0, -1, 0)


def _read_images(paths, size):
    images = [read_scene_image(p, size) for p in paths]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise ValueError(
            f"images have different sizes {sorted(shapes)}; pass image_size to resize them"
        )
    if not images:
        return np.zeros((0, 3, *(size or (1, 1))), np.float32)
    return np.stack(images)


class LazyImageArray:
    """Frames decoded from their files only when turned into an array.

    Behaves like a read-only float32 array of shape (n, 3, H, W) for what the estimators and
    scikit-learn need: ``len``, ``shape``, ``dtype``, row indexing (a slice, integer array or
    boolean mask gives another lazy array, so cross-validation splits stay lazy) and
    ``np.asarray``, which decodes the rows. An integer gives one decoded image.

    Parameters
    ----------
    paths : sequence of path-like
        One image file per row.
    size : (int, int)
        Height and width every image is resized to.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from matplotlib.image import imsave
    >>> from sklearn_sfr.datasets import LazyImageArray
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
    >>> for i, p in enumerate(paths):
    ...     imsave(p, np.full((20, 20, 3), i / 3))
    >>> images = LazyImageArray(paths, (8, 8))
    >>> images.shape, images[[0, 2]].shape          # nothing decoded yet
    ((3, 3, 8, 8), (2, 3, 8, 8))
    >>> np.asarray(images[1:]).shape                 # decoded now
    (2, 3, 8, 8)
    """

    dtype = np.dtype(np.float32)
    ndim = 4

    def __init__(self, paths, size):
        self.paths = np.asarray([str(p) for p in paths], dtype=object)
        self.size = (int(size[0]), int(size[1]))

    @property
    def shape(self):
        return (len(self.paths), 3, *self.size)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            return read_scene_image(self.paths[index], self.size)
        if isinstance(index, tuple):  # rows first, then the other axes on decoded pixels
            return np.asarray(self[index[0]])[(slice(None), *index[1:])]
        return type(self)(self.paths[index], self.size)

    def __array__(self, dtype=None, copy=None):
        images = _read_images(self.paths, self.size)
        return images if dtype is None else images.astype(dtype, copy=False)

    def __repr__(self):
        return f"LazyImageArray(n={len(self)}, size={self.size})"


def _find_columns(table, csv):
    """Map IMAGE / CLASS1 / CLASS2 (any case) to the file's column names."""
    by_upper = {str(c).strip().upper(): c for c in table.columns}
    missing = [name for name in _LABEL_COLUMNS if name not in by_upper]
    if missing:
        raise ValueError(
            f"{csv} has no column {' or '.join(missing)} (matched in any case); its columns "
            f"start {list(table.columns[:5])}"
        )
    return {name: by_upper[name] for name in _LABEL_COLUMNS}


def _audio_columns(table, named, audio_prefix, csv):
    """The MFCC columns: those whose name starts with the prefix (any case), else by position.

    By position means every column but IMAGE, CLASS1 and CLASS2, in file order (the real
    file's order is IMAGE, 104 MFCC columns, CLASS1, CLASS2).
    """
    prefix = audio_prefix.lower()
    columns = [c for c in table.columns if str(c).strip().lower().startswith(prefix)]
    if not columns:
        columns = [c for c in table.columns if c not in set(named.values())]
    if not columns:
        raise ValueError(f"{csv} has no MFCC columns (none start with {audio_prefix!r})")
    return columns


def _check_rows(table, named, audio, csv):
    """Refuse rows with an empty path or label, or an MFCC value that is not a finite number."""
    problems = {}
    for name in _LABEL_COLUMNS:
        values = table[named[name]]
        empty = values.isna() | (values.astype(str).str.strip() == "")
        for i in np.flatnonzero(empty.to_numpy()):
            problems.setdefault(i, f"empty {name}")
    numbers = table[audio].apply(pd.to_numeric, errors="coerce")
    bad = ~np.isfinite(numbers.to_numpy(dtype=np.float64))
    for i, j in zip(*np.nonzero(bad)):
        if i not in problems:
            problems[i] = f"{audio[j]}={table.iat[i, table.columns.get_loc(audio[j])]!r}"
    if problems:
        # Line numbers as a text editor shows them: the header is line 1.
        lines = [f"line {i + 2} ({problems[i]})" for i in sorted(problems)]
        raise ValueError(f"{csv} has {len(problems)} bad rows: {_listing(lines)}")
    return numbers.to_numpy(dtype=np.float32)


def _frame_numbers(paths):
    """The ``N`` of ``.../<class><N>.png`` (-1 where a name has no trailing number)."""
    out = []
    for p in paths:
        match = re.search(r"(\d+)$", Path(p).stem)
        out.append(int(match.group(1)) if match else -1)
    return np.asarray(out, dtype=np.int64)


def load_scene(
    path,
    image_size=32,
    *,
    audio_prefix="mfcc",
    n_audio=N_MFCC,
    missing_images="raise",
    lazy="auto",
):
    """Load a Scene classification set (frames + MFCC audio) as a ``Bunch``.

    Parameters
    ----------
    path : path-like
        The dataset folder, holding ``dataset.csv`` and the images it names.
    image_size : int, (int, int) or None, default=32
        Height and width the frames are resized to; None keeps the files' size (they must
        then all agree).
    audio_prefix : str, default="mfcc"
        MFCC columns are those whose name starts with this, in any case (``MFCC_1``,
        ``mfcc_1``); when none does, every column but IMAGE, CLASS1 and CLASS2, by position.
    n_audio : int or None, default=104
        Expected number of MFCC columns (13 coefficients x 8 windows); None accepts any.
    missing_images : {"raise", "drop"}, default="raise"
        What to do with rows whose image file does not exist: raise an error listing them,
        or drop the rows (the Bunch's ``dropped`` lists them).
    lazy : bool or "auto", default="auto"
        Decode images only when a slice is turned into an array (:class:`LazyImageArray`)
        instead of now; "auto" does so when the decoded pixels would exceed 2 GiB.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        ``X``: a :class:`skorch.helper.SliceDict` with ``image`` (n, 3, H, W) float32 RGB in
        [0, 1] (an ndarray, or a :class:`LazyImageArray`) and ``audio`` (n, n_audio) float32;
        ``target_class1``, ``target_class2``: (n,) label strings as the file holds them;
        ``frame``: DataFrame aligned with X (``IMAGE``, ``path``, ``CLASS1``, ``CLASS2``,
        ``frame``: the within-class frame number N of ``<class><N>.png``, ``line``: the CSV
        line); ``audio_columns``; ``classes1``, ``classes2``; ``dropped``; ``DESCR``.
        Rows are sorted by CLASS2 then frame number, so the frames of one video follow each
        other (which the blocked splits of :mod:`sklearn_sfr.model_selection` rely on).

    Raises
    ------
    FileNotFoundError
        No ``dataset.csv`` in ``path``, or image files missing (with their count and names).
    ValueError
        A required column is absent, or rows are bad (listed with their CSV line).

    Examples
    --------
    >>> import tempfile
    >>> from sklearn_sfr.datasets import load_scene, make_synthetic_scene
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = make_synthetic_scene(tmp + "/scene", n_per_class=4, image_size=16)
    ...     data = load_scene(root, image_size=8)
    >>> data.X["image"].shape, data.X["audio"].shape
    ((36, 3, 8, 8), (36, 104))
    >>> sorted(set(data.target_class1))
    ['INDOORS', 'OUTDOORS']
    """
    from skorch.helper import SliceDict

    if missing_images not in ("raise", "drop"):
        raise ValueError(f"missing_images must be 'raise' or 'drop', got {missing_images!r}")
    if lazy not in (True, False, "auto"):
        raise ValueError(f"lazy must be True, False or 'auto', got {lazy!r}")
    size = _size_of(image_size)
    root = Path(path)
    csv = root / CSV_NAME
    if not csv.is_file():
        what = "folder" if root.is_dir() else "path, which is not a folder"
        raise FileNotFoundError(f"no {CSV_NAME} in {root} ({what}); is this a Scene set?")
    # Strings stay strings (a label like "NA" must not become NaN); numbers are parsed below.
    try:
        table = pd.read_csv(csv, dtype=str, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{csv} cannot be read as a CSV table: {exc}") from exc
    if table.empty:
        raise ValueError(f"{csv} has no rows")
    named = _find_columns(table, csv)
    audio_columns = _audio_columns(table, named, audio_prefix, csv)
    if n_audio is not None and len(audio_columns) != n_audio:
        raise ValueError(
            f"{csv} has {len(audio_columns)} MFCC columns, expected {n_audio} (pass "
            "n_audio=None to accept any number)"
        )
    audio = _check_rows(table, named, audio_columns, csv)

    image = table[named["IMAGE"]].str.strip().to_numpy()
    files = np.asarray([str(root / p) for p in image], dtype=object)
    exists = np.fromiter((Path(f).is_file() for f in files), bool, len(files))
    dropped = list(image[~exists])
    if dropped and missing_images == "raise":
        raise FileNotFoundError(
            f"{len(dropped)} of {len(image)} images listed in {csv} are missing: "
            f"{_listing(dropped)}"
        )
    frame = pd.DataFrame(
        {
            "IMAGE": image,
            "path": files,
            "CLASS1": table[named["CLASS1"]].str.strip().to_numpy(),
            "CLASS2": table[named["CLASS2"]].str.strip().to_numpy(),
            "frame": _frame_numbers(image),
            "line": np.arange(len(table)) + 2,
        }
    )
    keep = np.flatnonzero(exists)
    order = keep[np.lexsort((frame["frame"].to_numpy()[keep], frame["CLASS2"].to_numpy()[keep]))]
    frame = frame.iloc[order].reset_index(drop=True)
    audio = audio[order]

    if lazy == "auto":
        lazy = False if size is None else len(frame) * 3 * size[0] * size[1] * 4 > LAZY_BYTES
    if lazy and size is None:
        raise ValueError("lazy loading needs an image_size (all rows must share one shape)")
    paths = frame["path"].to_numpy()
    images = LazyImageArray(paths, size) if lazy else _read_images(paths, size)
    shape = images.shape
    descr = (
        f"Scene classification set (images + MFCC audio)\n\nFolder: {root}\n"
        f"Rows: {len(frame)} ({len(dropped)} dropped for missing images)\n"
        f"Images: {shape[2]}x{shape[3]} RGB in [0, 1]{' (decoded on demand)' if lazy else ''}\n"
        f"Audio: {len(audio_columns)} MFCC values per row\n"
        f"CLASS1: {sorted(frame['CLASS1'].unique())}\nCLASS2: {sorted(frame['CLASS2'].unique())}"
    )
    return Bunch(
        X=SliceDict(image=images, audio=audio),
        target_class1=frame["CLASS1"].to_numpy(),
        target_class2=frame["CLASS2"].to_numpy(),
        frame=frame,
        audio_columns=[str(c) for c in audio_columns],
        classes1=np.unique(frame["CLASS1"]),
        classes2=np.unique(frame["CLASS2"]),
        dropped=dropped,
        DESCR=descr,
    )
