"""``make_synthetic_scene``: a Scene-like set (video frames + MFCC audio) written as the real one.

Nothing of the real set is on this machine, so the generator writes the same layout
(``dataset.csv`` plus ``images/<class>/<class><N>.png``) and :func:`load_scene` reads it as it
would read the Kaggle release. What matters for the study is built in on purpose:

* Every class has its own look: a palette, a horizon or floor line, and textures (tree
  trunks, waves, building windows, shelves, crowd, lights). Each "video" of a class jitters
  the palette, horizon and texture scale, so images separate the classes well but not
  perfectly.
* MFCC audio comes from class templates that pair up (beach/river water, forest/jungle birds,
  city/football crowds, classroom/restaurant speech), with a per-video offset larger than the gap
  between partners: audio classes overlap more than image classes.
* A class's frames are cut from a few videos, one frame per second, in order. The camera
  pans slowly and the audio drifts as an AR(1) process, so consecutive frames are
  near-duplicates: a random train/test split puts a frame's neighbours in training and
  overstates accuracy, a blocked split does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from ..utils._outputs import OutputFolder
from ._scene import CSV_NAME, N_MFCC, SCENE_CLASSES

#: The ``kind`` in the marker (``utils._outputs.MARKER``) of a folder this generator wrote:
#: how a report tells synthetic data from the real release, which carries no marker.
SYNTHETIC_SCENE_KIND = "scene-data"

#: MFCC coefficients per audio window and windows per second (13 x 8 = 104 per row).
N_COEFFICIENTS, N_WINDOWS = 13, 8

# Typical spread of each MFCC coefficient (c0, the log energy, varies most), and c0's level.
_MFCC_SCALE = np.array([40, 15, 10, 8, 6, 5, 4, 4, 3, 3, 3, 2, 2], dtype=np.float64)
_MFCC_C0 = -250.0

#: Classes whose sounds resemble each other (they share an audio template).
_AUDIO_PAIRS = {
    "BEACH": 0,
    "RIVER": 0,
    "FOREST": 1,
    "JUNGLE": 1,
    "CITY": 2,
    "FOOTBALL-MATCH": 2,
    "CLASSROOM": 3,
    "RESTAURANT": 3,
    "GROCERY-STORE": 4,
}

# Each class as a background (top colour above the horizon, bottom colour below) and layers
# (pattern, colour, rows from y0 to y1 as fractions of the height, spatial frequency,
# threshold of the pattern). Rows are measured from the top; the horizon shifts them per video.
_RECIPES = {
    "BEACH": dict(
        top=(0.50, 0.70, 0.95), bottom=(0.87, 0.80, 0.60), horizon=0.45,
        layers=[("band", (0.15, 0.45, 0.70), 0.45, 0.62, 0, 0),
                ("hstripes", (0.95, 0.95, 0.95), 0.55, 0.66, 14, 0.75)],
    ),
    "RIVER": dict(
        top=(0.55, 0.70, 0.90), bottom=(0.25, 0.45, 0.20), horizon=0.35,
        layers=[("blobs", (0.15, 0.35, 0.12), 0.20, 0.42, 6, 0.0),
                ("band", (0.20, 0.40, 0.55), 0.55, 0.85, 0, 0),
                ("hstripes", (0.60, 0.70, 0.80), 0.55, 0.85, 22, 0.7)],
    ),
    "FOREST": dict(
        top=(0.70, 0.80, 0.90), bottom=(0.30, 0.25, 0.15), horizon=0.25,
        layers=[("vstripes", (0.25, 0.18, 0.10), 0.15, 0.92, 6, 0.55),
                ("blobs", (0.15, 0.40, 0.15), 0.00, 0.45, 8, 0.1)],
    ),
    "JUNGLE": dict(
        top=(0.60, 0.75, 0.70), bottom=(0.15, 0.35, 0.10), horizon=0.10,
        layers=[("blobs", (0.10, 0.50, 0.15), 0.00, 1.00, 10, -0.2),
                ("blobs", (0.05, 0.20, 0.05), 0.00, 1.00, 16, 0.5)],
    ),
    "CITY": dict(
        top=(0.70, 0.75, 0.80), bottom=(0.35, 0.35, 0.37), horizon=0.70,
        layers=[("vstripes", (0.50, 0.50, 0.55), 0.15, 0.70, 4, -0.3),
                ("grid", (0.85, 0.85, 0.60), 0.22, 0.66, 14, 0.4)],
    ),
    "FOOTBALL-MATCH": dict(
        top=(0.50, 0.40, 0.45), bottom=(0.20, 0.60, 0.20), horizon=0.35,
        layers=[("spots", (0.90, 0.20, 0.20), 0.00, 0.35, 0, 0.3),
                ("spots", (0.95, 0.90, 0.30), 0.00, 0.35, 0, 0.5),
                ("hstripes", (0.27, 0.70, 0.27), 0.35, 1.00, 6, 0.0),
                ("vstripes", (0.95, 0.95, 0.95), 0.35, 1.00, 2, 0.97)],
    ),
    "CLASSROOM": dict(
        top=(0.85, 0.82, 0.70), bottom=(0.55, 0.40, 0.25), horizon=0.65,
        layers=[("box", (0.10, 0.30, 0.20), 0.15, 0.45, 1, 0.4),
                ("hstripes", (0.65, 0.48, 0.30), 0.65, 1.00, 6, 0.3)],
    ),
    "RESTAURANT": dict(
        top=(0.50, 0.30, 0.15), bottom=(0.30, 0.18, 0.10), horizon=0.60,
        layers=[("spots", (1.00, 0.85, 0.50), 0.00, 0.50, 0, 0.75),
                ("blobs", (0.75, 0.70, 0.60), 0.55, 0.92, 5, 0.3)],
    ),
    "GROCERY-STORE": dict(
        top=(0.95, 0.95, 0.92), bottom=(0.80, 0.80, 0.78), horizon=0.80,
        layers=[("confetti", (0.0, 0.0, 0.0), 0.25, 0.80, 0, -0.1),
                ("hstripes", (0.60, 0.60, 0.65), 0.25, 0.80, 5, 0.7)],
    ),
}  # fmt: skip

# A video's field is this many image widths wide, so the camera can pan across it.
_FIELD_WIDTHS = 4


class _Video:
    """The fixed look of one video: jittered palette, horizon, texture scale, pan, noise fields."""

    def __init__(self, recipe, size, rng):
        self.recipe = recipe
        self.cast = rng.normal(0, 0.06, 3)
        self.gain = rng.uniform(0.75, 1.2)
        self.horizon_shift = rng.normal(0, 0.05)
        self.freq_scale = rng.uniform(0.8, 1.25)
        self.phase = rng.uniform(0, 2 * np.pi)
        self.pan = rng.uniform(-0.015, 0.015)  # image widths per frame (one per second)
        width = _FIELD_WIDTHS * size
        field = ndimage.gaussian_filter(rng.normal(size=(size, width)), size / 16, mode="wrap")
        self.field = field / field.std()
        self.spots = rng.random((size, width))
        colours = ndimage.gaussian_filter(rng.random((3, size, width)), (0, 1, 1), mode="wrap")
        self.colours = np.clip((colours - colours.mean()) * 4 + 0.5, 0, 1)


def _render(video, t, size, rng):
    """Frame ``t`` of ``video`` as float (size, size, 3) in [0, 1]."""
    recipe = video.recipe
    yy, xx = np.mgrid[0:size, 0:size] / size
    offset = video.pan * t
    # Columns of the video's wide fields seen by this frame (the camera pans over them).
    cols = (np.arange(size) + round(offset * size)) % (_FIELD_WIDTHS * size)
    xs = xx + offset
    tilt = 0.01 * np.sin(0.2 * t + video.phase)
    shift = video.horizon_shift + tilt
    horizon = recipe["horizon"] + shift
    img = np.where(
        (yy < horizon)[..., None], np.asarray(recipe["top"]), np.asarray(recipe["bottom"])
    )
    # A soft vertical gradient, as light falls off towards the horizon.
    img = img * (0.9 + 0.2 * np.abs(yy - horizon))[..., None]
    for kind, colour, y0, y1, freq, threshold in recipe["layers"]:
        rows = (yy >= y0 + shift) & (yy < y1 + shift)
        f = freq * video.freq_scale
        if kind == "band":
            mask = np.ones_like(yy, bool)
        elif kind == "vstripes":
            mask = np.sin(2 * np.pi * f * xs + video.phase) > threshold
        elif kind == "hstripes":
            mask = (
                np.sin(2 * np.pi * f * yy + video.phase + 3 * np.sin(2 * np.pi * xs)) > threshold
            )
        elif kind == "grid":
            mask = (np.sin(2 * np.pi * f * xs) > threshold) & (np.sin(2 * np.pi * f * yy) > 0)
        elif kind == "box":
            mask = np.abs(((xs + video.phase / 7) % 1.0) - 0.5) < threshold
        elif kind == "blobs":
            zoomed = ndimage.zoom(video.field, (1, 8 / max(f, 1)), order=1, mode="grid-wrap")
            mask = zoomed[:, cols % zoomed.shape[1]] > threshold
        elif kind == "spots":
            mask = video.spots[:, cols] > 1 - (1 - threshold) / 2
        else:  # "confetti": many-coloured products on shelves
            mask = video.field[:, cols] > threshold
            colour = np.moveaxis(video.colours[:, :, cols], 0, -1)
        img = np.where((rows & mask)[..., None], colour, img)
    img = (img + video.cast) * video.gain * (1 + rng.normal(0, 0.02))
    img = img + rng.normal(0, 0.03, img.shape)
    return np.clip(img, 0, 1)


def _audio_templates(classes, rng):
    """One 13-coefficient mean per class, close to its pair's (see ``_AUDIO_PAIRS``)."""
    pairs = {c: _AUDIO_PAIRS.get(c, 100 + i) for i, c in enumerate(classes)}
    pair_mean = {p: rng.normal(0, 1, N_COEFFICIENTS) for p in set(pairs.values())}
    return {
        c: _MFCC_SCALE * (0.8 * pair_mean[pairs[c]] + 0.4 * rng.normal(0, 1, N_COEFFICIENTS))
        for c in classes
    }


def _video_audio(template, n_frames, rng, rho=0.85):
    """(n_frames, 104) MFCC rows: template + video offset + AR(1) drift + window noise."""
    offset = _MFCC_SCALE * rng.normal(0, 1.0, N_COEFFICIENTS)
    state = np.empty((n_frames, N_COEFFICIENTS))
    state[0] = rng.normal(0, 0.7, N_COEFFICIENTS)
    innovation = 0.7 * np.sqrt(1 - rho**2)
    for t in range(1, n_frames):
        state[t] = rho * state[t - 1] + rng.normal(0, innovation, N_COEFFICIENTS)
    windows = rng.normal(0, 0.8, (n_frames, N_WINDOWS, N_COEFFICIENTS))
    mfcc = template + offset + _MFCC_SCALE * (state[:, None, :] + windows)
    mfcc[..., 0] += _MFCC_C0
    # Window-major, as the real columns run: MFCC_1..13 are the first window's coefficients.
    return mfcc.reshape(n_frames, N_MFCC)


def _video_lengths(n_frames, n_videos, rng):
    """Split a class's frames into ``n_videos`` runs of unequal length (at least 2 each)."""
    n_videos = max(1, min(n_videos, n_frames // 2))
    cuts = np.sort(rng.choice(np.arange(2, n_frames - 1), n_videos - 1, replace=False))
    lengths = np.diff(np.r_[0, cuts, n_frames])
    if (lengths < 2).any():  # rare: fall back to equal runs
        lengths = np.diff(np.linspace(0, n_frames, n_videos + 1).astype(int))
    return lengths


def _write_png(array, path):
    from PIL import Image

    Image.fromarray(np.round(array * 255).astype(np.uint8), mode="RGB").save(path)


def make_synthetic_scene(
    path,
    n_per_class=160,
    *,
    classes=None,
    image_size=64,
    videos_per_class=5,
    mfcc_prefix="MFCC_",
    random_state=0,
    overwrite=False,
):
    """Write a synthetic Scene set (``dataset.csv`` + PNG frames) in the real layout.

    Parameters
    ----------
    path : path-like
        Folder to create. It is written under a temporary name beside it and renamed at the
        end, so an interrupted run leaves no half-written set.
    n_per_class : int, default=160
        Frames (rows) per class: 9 x 160 = 1440 rows with the default classes.
    classes : sequence of str, default=None
        CLASS2 strings; None: the nine of the Kaggle CSV. A class not among them is labelled
        OUTDOORS, borrows the look of one of the nine and gets a sound of its own.
    image_size : int, default=64
        Side of the written PNGs in pixels (:func:`load_scene` resizes them).
    videos_per_class : int, default=5
        Videos each class's frames are cut from (runs of consecutive frames).
    mfcc_prefix : str
        Header of the MFCC columns, ``"MFCC_"`` by default (``"mfcc_"`` writes lower case
        names).
    random_state : int, default=0
        Seed; the same seed writes the same files.
    overwrite : bool, default=False
        Replace a synthetic Scene set this library wrote at ``path``; any other existing
        folder (a real Scene set included) is refused, never deleted.

    Returns
    -------
    path : pathlib.Path
        The written folder.

    Examples
    --------
    >>> import tempfile
    >>> import pandas as pd
    >>> from sklearn_sfr.datasets import make_synthetic_scene
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     root = make_synthetic_scene(tmp + "/scene", n_per_class=3, image_size=16)
    ...     table = pd.read_csv(root / "dataset.csv")
    >>> table.shape, table.columns[[0, 1, -2, -1]].tolist()
    ((27, 107), ['IMAGE', 'MFCC_1', 'CLASS1', 'CLASS2'])
    >>> table["IMAGE"][0]
    'images/beach/beach0.png'
    """
    if classes is None:
        classes = list(SCENE_CLASSES)
    classes = [str(c) for c in classes]
    if len(set(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be at least two distinct strings, got {classes}")
    if int(n_per_class) < 2 or int(image_size) < 8:
        raise ValueError(
            f"n_per_class must be >= 2 and image_size >= 8, got {n_per_class}, {image_size}"
        )
    path = Path(path)
    # Only a set this library wrote is replaced (its marker, nothing added): a real Scene
    # set also holds a dataset.csv, and is never deleted.
    folder = OutputFolder(path, kind=SYNTHETIC_SCENE_KIND, overwrite=overwrite)
    rng = np.random.default_rng(random_state)
    templates = _audio_templates(classes, rng)
    known = list(_RECIPES)
    with folder as tmp:
        rows, audio = [], []
        for i, cls in enumerate(classes):
            recipe = _RECIPES.get(cls.upper(), _RECIPES[known[i % len(known)]])
            name_of_class = cls.lower()
            (tmp / "images" / name_of_class).mkdir(parents=True)
            frame = 0
            for length in _video_lengths(int(n_per_class), videos_per_class, rng):
                video = _Video(recipe, int(image_size), rng)
                audio.append(_video_audio(templates[cls], length, rng))
                for t in range(length):
                    name = f"images/{name_of_class}/{name_of_class}{frame}.png"
                    _write_png(_render(video, t, int(image_size), rng), tmp / name)
                    rows.append((name, SCENE_CLASSES.get(cls.upper(), "OUTDOORS"), cls))
                    frame += 1
        table = pd.DataFrame(
            np.vstack(audio), columns=[f"{mfcc_prefix}{k + 1}" for k in range(N_MFCC)]
        )
        table.insert(0, "IMAGE", [r[0] for r in rows])
        table["CLASS1"] = [r[1] for r in rows]
        table["CLASS2"] = [r[2] for r in rows]
        table.to_csv(tmp / CSV_NAME, index=False, float_format="%.4f")
    return path
