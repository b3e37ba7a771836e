"""The Scene loader and generator: the real layout, header variants, RGBA, missing files."""

import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.model_selection import KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.tree import DecisionTreeClassifier

from sklearn_sfr.datasets import (
    SCENE_CLASSES,
    LazyImageArray,
    load_scene,
    make_synthetic_scene,
)
from sklearn_sfr.features import ColourFeatures
from sklearn_sfr.preprocessing import ModalitySelector
from tests.conftest import file_state

N_PER_CLASS = 6


@pytest.fixture(scope="module")
def scene_dir(tmp_path_factory):
    """Nine classes x 6 frames, lower-case MFCC headers, 16 px PNGs; tests must not modify it."""
    root = tmp_path_factory.mktemp("scene") / "scene"
    return make_synthetic_scene(
        root, n_per_class=N_PER_CLASS, image_size=16, mfcc_prefix="mfcc_", random_state=1
    )


@pytest.fixture
def scene_copy(scene_dir, tmp_path):
    """A copy that a test may damage."""
    return shutil.copytree(scene_dir, tmp_path / "copy")


def test_loads_lowercase_headers_and_nine_classes(scene_dir):
    header = pd.read_csv(scene_dir / "dataset.csv", nrows=0).columns
    assert header[1] == "mfcc_1" and len(header) == 107
    before = file_state(scene_dir / "dataset.csv")
    data = load_scene(scene_dir, image_size=8)
    assert file_state(scene_dir / "dataset.csv") == before  # opened read-only, untouched
    n = 9 * N_PER_CLASS
    assert data.X["image"].shape == (n, 3, 8, 8) and data.X["image"].dtype == np.float32
    assert data.X["audio"].shape == (n, 104)
    assert data.X["image"].min() >= 0 and data.X["image"].max() <= 1
    assert data.audio_columns[:2] == ["mfcc_1", "mfcc_2"]
    assert sorted(data.classes2) == sorted(SCENE_CLASSES)
    assert set(data.target_class1) == {"INDOORS", "OUTDOORS"}
    # CLASS1 follows CLASS2 as written, rows are sorted by class then frame number.
    assert all(SCENE_CLASSES[c2] == c1 for c1, c2 in zip(data.target_class1, data.target_class2))
    first = data.frame[data.frame["CLASS2"] == "GROCERY-STORE"]
    assert first["frame"].tolist() == list(range(N_PER_CLASS))
    assert first["IMAGE"].iloc[0] == "images/grocery-store/grocery-store0.png"
    audio = pd.read_csv(scene_dir / "dataset.csv").set_index("IMAGE").filter(like="mfcc_")
    np.testing.assert_allclose(
        data.X["audio"], audio.loc[data.frame["IMAGE"]].to_numpy(), rtol=1e-6
    )


def test_any_header_case_and_columns_by_position(scene_copy):
    csv = scene_copy / "dataset.csv"
    table = pd.read_csv(csv)
    reference = load_scene(scene_copy, image_size=8)
    upper = table.rename(columns=lambda c: c.upper())
    upper.rename(columns={"IMAGE": "image", "CLASS2": "Class2"}).to_csv(csv, index=False)
    assert load_scene(scene_copy, image_size=8).audio_columns[0] == "MFCC_1"
    # No MFCC prefix at all: the columns between IMAGE and the labels, by position.
    table.rename(columns=lambda c: c.replace("mfcc_", "coef")).to_csv(csv, index=False)
    by_position = load_scene(scene_copy, image_size=8)
    np.testing.assert_array_equal(by_position.X["audio"], reference.X["audio"])
    assert by_position.audio_columns[-1] == "coef104"


def test_rgba_png_becomes_rgb(scene_copy):
    data = load_scene(scene_copy, image_size=None)
    name = data.frame["IMAGE"][5]
    rgb = Image.open(scene_copy / name).convert("RGB")
    rgba = rgb.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgb.size))  # alpha varies: not composited
    rgba.save(scene_copy / name)
    assert Image.open(scene_copy / name).mode == "RGBA"
    again = load_scene(scene_copy, image_size=None)
    assert again.X["image"].shape == (9 * N_PER_CLASS, 3, 16, 16)
    np.testing.assert_array_equal(again.X["image"][5], data.X["image"][5])


def test_resizing_keeps_the_picture(scene_dir):
    full = load_scene(scene_dir, image_size=None).X["image"]
    small = load_scene(scene_dir, image_size=(8, 4)).X["image"]
    assert small.shape[2:] == (8, 4)
    # An anti-aliased shrink keeps each frame's mean colour.
    np.testing.assert_allclose(small.mean(axis=(2, 3)), full.mean(axis=(2, 3)), atol=0.03)


def test_missing_images_are_listed_with_a_count(scene_copy):
    gone = ["images/beach/beach3.png", "images/river/river0.png"]
    for name in gone:
        (scene_copy / name).unlink()
    with pytest.raises(FileNotFoundError, match="2 of 54 images") as err:
        load_scene(scene_copy)
    assert all(name in str(err.value) for name in gone)
    data = load_scene(scene_copy, image_size=8, missing_images="drop")
    assert len(data.frame) == 52 and sorted(data.dropped) == sorted(gone)
    assert len(data.X["audio"]) == 52 and not set(gone) & set(data.frame["IMAGE"])


def test_missing_csv_and_missing_column(tmp_path, scene_copy):
    with pytest.raises(FileNotFoundError, match="no dataset.csv in"):
        load_scene(tmp_path / "nowhere")
    csv = scene_copy / "dataset.csv"
    pd.read_csv(csv).drop(columns="CLASS1").to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"dataset.csv has no column CLASS1"):
        load_scene(scene_copy)


def test_bad_rows_are_named_by_line(scene_copy):
    csv = scene_copy / "dataset.csv"
    table = pd.read_csv(csv, dtype=str)
    table.loc[3, "mfcc_7"] = "n/a"
    table.loc[10, "CLASS2"] = ""
    table.to_csv(csv, index=False)
    with pytest.raises(ValueError, match=r"2 bad rows: line 5 \(mfcc_7='n/a'\), line 12"):
        load_scene(scene_copy)
    table.drop(columns="mfcc_104").to_csv(csv, index=False)
    with pytest.raises(ValueError, match="103 MFCC columns, expected 104"):
        load_scene(scene_copy)


def test_lazy_images_decode_on_demand(scene_dir):
    eager = load_scene(scene_dir, image_size=8)
    lazy = load_scene(scene_dir, image_size=8, lazy=True)
    images = lazy.X["image"]
    assert isinstance(images, LazyImageArray) and images.shape == eager.X["image"].shape
    rows = np.array([3, 0, 40])
    part = lazy.X[rows]  # a SliceDict slice stays lazy
    assert isinstance(part["image"], LazyImageArray)
    np.testing.assert_array_equal(np.asarray(part["image"]), eager.X["image"][rows])
    np.testing.assert_array_equal(images[7], eager.X["image"][7])
    model = make_pipeline(
        ModalitySelector("image"), ColourFeatures(), DecisionTreeClassifier(random_state=0)
    )
    cv = KFold(3, shuffle=True, random_state=0)
    np.testing.assert_array_equal(
        cross_val_score(model, lazy.X, lazy.target_class2, cv=cv),
        cross_val_score(model, eager.X, eager.target_class2, cv=cv),
    )


def test_generator_is_reproducible_and_safe(tmp_path, scene_dir):
    again = make_synthetic_scene(
        tmp_path / "again", n_per_class=N_PER_CLASS, image_size=16, mfcc_prefix="mfcc_",
        random_state=1,
    )  # fmt: skip
    assert (again / "dataset.csv").read_bytes() == (scene_dir / "dataset.csv").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        make_synthetic_scene(again, n_per_class=2)
    # A folder holding someone's Scene set (a dataset.csv of theirs) is never replaced.
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "dataset.csv").write_text("IMAGE,CLASS1,CLASS2\n")
    with pytest.raises(FileExistsError, match="did not write"):
        make_synthetic_scene(tmp_path / "other", n_per_class=2, overwrite=True)
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["dataset.csv"]
    make_synthetic_scene(again, n_per_class=2, image_size=8, overwrite=True)
    assert len(pd.read_csv(again / "dataset.csv")) == 18
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_frames_of_a_video_are_near_duplicates(tmp_path):
    """Consecutive frames are closer than other frames of their class: a random split leaks."""
    root = make_synthetic_scene(tmp_path / "s", n_per_class=30, image_size=16, videos_per_class=2)
    data = load_scene(root, image_size=16)
    n, cls = len(data.frame), data.target_class2
    consecutive = cls[1:] == cls[:-1]
    same_class = (cls[:, None] == cls[None]) & ~np.eye(n, dtype=bool)
    # Audio: the second's mean over its 8 windows (each window adds its own noise), per
    # coefficient in units of its spread.
    audio = data.X["audio"].reshape(n, 8, 13).mean(axis=1)
    audio = (audio - audio.mean(axis=0)) / audio.std(axis=0)
    for x, ratio in ((data.X["image"].reshape(n, -1), 0.5), (audio, 0.7)):
        step = np.abs(np.diff(x, axis=0)).mean(axis=1)[consecutive].mean()
        within = np.abs(x[:, None] - x[None]).mean(axis=2)[same_class].mean()
        assert step < ratio * within


def test_audio_classes_overlap_more_than_image_classes(tmp_path):
    from sklearn.neighbors import NearestCentroid
    from sklearn.preprocessing import StandardScaler

    from sklearn_sfr.model_selection import BlockedFrameSplit

    data = load_scene(make_synthetic_scene(tmp_path / "s", n_per_class=40, image_size=16), 16)
    y, groups = data.target_class2, data.target_class2
    cv = BlockedFrameSplit(4)
    audio = make_pipeline(ModalitySelector("audio"), StandardScaler(), NearestCentroid())
    image = make_pipeline(
        ModalitySelector("image"), ColourFeatures(), StandardScaler(), NearestCentroid()
    )
    a = cross_val_score(audio, data.X, y, cv=cv, groups=groups).mean()
    i = cross_val_score(image, data.X, y, cv=cv, groups=groups).mean()
    assert 1 / 9 + 0.1 < a < i  # audio is informative, images more so
