"""Tests of the exploratory figures in :mod:`sklearn_sfr.plotting`."""

import os
import subprocess
import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Annotation

from sklearn_sfr.plotting import (
    EMISSION_LINES,
    QUASAR_LINES,
    plot_cutouts,
    plot_spectra,
    plot_target_distribution,
    save_figure,
)
from sklearn_sfr.plotting._eda import _label_groups, _stretched

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def images():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:16, :16] - 7.5
    galaxy = np.exp(-np.hypot(xx, yy) / 2.5)
    sed = np.array([0.3, 1.0, 1.5, 1.8, 2.0])
    out = sed[None, :, None, None] * galaxy + rng.normal(0, 0.05, size=(3, 5, 16, 16))
    return out * 3e-16  # cube units are tiny; the stretch must not care


@pytest.fixture
def spectra():
    rng = np.random.default_rng(1)
    wavelength = np.linspace(3840.0, 8915.0, 800)
    flux = (1.0 + rng.normal(0.0, 0.05, size=(3, 800))) * np.array([[1.0], [3.0], [0.2]]) * 1e-17
    errors = np.full_like(flux, 0.05e-17)
    return wavelength, flux, errors


def _draw(fig):
    fig.canvas.draw()  # renders every artist: catches errors that only show at draw time


# ------------------------------------------------------------------------------ plot_cutouts


def test_plot_cutouts_grid(images):
    titles = ["log SFR 0.3, z 0.08", "log SFR -1.0, z 0.12", "log SFR 1.1, z 0.05"]
    fig = plot_cutouts(images, titles=titles)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * 6
    for ax in fig.axes:
        assert len(ax.images) == 1
    # last panel of a row is the gri composite (uint8 RGB), the others single bands
    assert fig.axes[5].images[0].get_array().shape == (16, 16, 3)
    assert fig.axes[5].images[0].get_array().dtype == np.uint8
    assert fig.axes[0].images[0].get_array().shape == (16, 16)
    assert [sf.get_suptitle() for sf in fig.subfigs] == titles
    assert [ax.texts[0].get_text() for ax in fig.axes[:6]] == ["u", "g", "r", "i", "z", "gri"]
    _draw(fig)


def test_plot_cutouts_options(images):
    assert len(plot_cutouts(images, rgb=False).axes) == 3 * 5
    assert len(plot_cutouts(images, n=2).axes) == 2 * 6
    assert len(plot_cutouts(images, n=10).axes) == 3 * 6
    fig = plot_cutouts(images, n=2, titles=["a", "b"])  # titles of the objects shown
    assert [sf.get_suptitle() for sf in fig.subfigs] == ["a", "b"]
    fig = plot_cutouts(images, n=2, titles=["a", "b", "c"])  # or of all objects
    assert [sf.get_suptitle() for sf in fig.subfigs] == ["a", "b"]
    for stretch in ("linear", "sqrt", "log"):
        _draw(plot_cutouts(images[:1], stretch=stretch))
    fig = plt.figure()
    assert plot_cutouts(images[:1], fig=fig) is fig
    # other band names and order: the composite finds g, r, i by name
    fig = plot_cutouts(images[:, :3], band_names=("i", "g", "r"))
    assert len(fig.axes) == 3 * 4


def test_plot_cutouts_nan_and_flat_images(images):
    images = images.copy()
    images[0, 2, :4, :] = np.nan  # masked strip
    images[1] = np.nan  # nothing at all
    images[2, 0] = 1.0  # flat band
    images[2, 1, 3, 3] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig = plot_cutouts(images)
        _draw(fig)
    shown = fig.axes[2].images[0].get_array()
    # NaN reaches the colour map as masked ("bad" colour); the rest is mapped into [0, 1]
    assert np.ma.getmaskarray(shown)[:4].all()
    assert not np.ma.getmaskarray(shown)[4:].any()
    assert np.isfinite(shown[4:]).all()
    assert shown[4:].min() >= 0.0 and shown[4:].max() <= 1.0


def test_stretched_robust_limits():
    rng = np.random.default_rng(2)
    image = rng.normal(0.0, 1.0, (32, 32))
    image[0, 0] = 1e6  # one hot pixel must not wash out the rest
    out = _stretched(image, "linear")
    assert out[0, 0] == 1.0
    assert 0.3 < np.median(out) < 0.7


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": np.zeros((5, 16, 16))}, "images"),
        ({"images": np.zeros((2, 4, 16, 16))}, "images"),
        ({"images": np.zeros((0, 5, 16, 16))}, "images"),
        ({"images": np.zeros((2, 5, 8, 8)), "titles": ["a"]}, "titles"),
        ({"images": np.zeros((2, 5, 8, 8)), "stretch": "cubic"}, "stretch"),
        ({"images": np.zeros((2, 5, 8, 8)), "n": 0}, "`n`"),
        ({"images": np.zeros((2, 3, 8, 8)), "band_names": ("u", "g", "z")}, "band_names"),
    ],
)
def test_plot_cutouts_invalid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_cutouts(**kwargs)


# ------------------------------------------------------------------------------ plot_spectra


def _visible_lines(wavelength, z, table=EMISSION_LINES):
    """(markers, names): the lines of ``table`` whose label falls on the grid at ``z``."""
    lo, hi = wavelength.min(), wavelength.max()
    names = [name for name, ws in table.items() if lo <= np.mean(ws) * (1 + z) <= hi]
    markers = sum(lo <= w * (1 + z) <= hi for name in names for w in table[name])
    return markers, names


def _line_labels(ax):
    """The line labels of a spectra figure (annotations; the object labels are plain text)."""
    return [t for t in ax.texts if isinstance(t, Annotation)]


def _named(ax):
    """Every line name written on the axes (merged labels split)."""
    return {name for t in _line_labels(ax) for name in t.get_text().split(", ")}


def test_plot_spectra_stacked(spectra):
    wavelength, flux, errors = spectra
    z = np.array([0.0, 0.05, 0.2])
    fig = plot_spectra(wavelength, flux, errors=errors, labels=["a", "b", "c"], redshift=z)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    counts = [_visible_lines(wavelength, zi) for zi in z]
    assert len(ax.lines) == 3 + sum(m for m, _ in counts)
    # every visible line is named; lines too close to tell apart share a label
    assert _named(ax) == {name for _, names in counts for name in names}
    assert 0 < len(_line_labels(ax)) <= sum(len(names) for _, names in counts)
    assert len(ax.texts) == 3 + len(_line_labels(ax))
    assert len(ax.collections) == 3  # error bands
    assert {"a", "b", "c"} <= {t.get_text() for t in ax.texts}
    # stacked: each spectrum lies above the previous one
    medians = [np.nanmedian(line.get_ydata()) for line in ax.lines[:3]]
    assert medians[0] < medians[1] < medians[2]
    # the Halpha marker of the z=0.05 spectrum sits at the redshifted wavelength
    xs = np.array([line.get_xdata()[0] for line in ax.lines[3:]])
    assert np.isclose(xs, 6564.61 * 1.05).sum() == 1
    _draw(fig)


def test_plot_spectra_options(spectra):
    wavelength, flux, errors = spectra
    fig = plot_spectra(wavelength, flux, lines=False)
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and len(ax.texts) == 0 and len(ax.collections) == 0
    fig = plot_spectra(wavelength, flux, labels=["a", "b", "c"], offset=False, redshift=0.1)
    ax = fig.axes[0]
    assert ax.get_legend() is not None
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]
    # offset=False keeps the data as they are
    np.testing.assert_allclose(ax.lines[1].get_ydata(), flux[1])
    # normalize: each spectrum divided by its median
    fig = plot_spectra(wavelength, flux, errors=errors, normalize=True, lines=False)
    ax = fig.axes[0]
    assert np.nanmedian(ax.lines[0].get_ydata()) == pytest.approx(1.0)
    assert ax.get_ylabel() == "normalised flux + offset"
    # a single 1-D spectrum, into a given axes
    fig, ax = plt.subplots()
    assert plot_spectra(wavelength, flux[0], ax=ax, ylabel="f") is fig
    assert len(ax.lines) == 1 + _visible_lines(wavelength, 0.0)[0]
    assert ax.get_ylabel() == "f"


def test_plot_spectra_nan(spectra):
    wavelength, flux, errors = spectra
    flux = flux.copy()
    errors = errors.copy()
    flux[0, 100:150] = np.nan
    flux[1] = np.nan  # an empty spectrum
    errors[2, 300:400] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        for offset in (True, False):
            fig = plot_spectra(
                wavelength,
                flux,
                errors=errors,
                redshift=[0.1, np.nan, 0.0],
                offset=offset,
                normalize=True,
                labels=["a", "b", "c"],
            )
            _draw(fig)
    fig = plot_spectra(wavelength, np.full((2, wavelength.size), np.nan))
    _draw(fig)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"wavelength": np.arange(10.0), "spectra": np.zeros((2, 11))}, "wavelength"),
        ({"wavelength": np.zeros((2, 10)), "spectra": np.zeros((2, 10))}, "wavelength"),
        ({"wavelength": np.arange(10.0), "spectra": np.zeros((2, 2, 10))}, "spectra"),
        ({"wavelength": np.arange(10.0), "spectra": np.zeros((0, 10))}, "spectra"),
        (
            {
                "wavelength": np.arange(10.0),
                "spectra": np.zeros((2, 10)),
                "errors": np.zeros((2, 9)),
            },
            "errors",
        ),
        (
            {
                "wavelength": np.arange(10.0),
                "spectra": np.zeros((2, 10)),
                "errors": np.zeros((10, 2)),
            },
            "errors",
        ),
        (
            {"wavelength": np.arange(10.0), "spectra": np.zeros((2, 10)), "redshift": [0.1]},
            "redshift",
        ),
        (
            {"wavelength": np.arange(10.0), "spectra": np.zeros((2, 10)), "labels": ["a"]},
            "labels",
        ),
    ],
)
def test_plot_spectra_invalid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_spectra(**kwargs)


def test_label_groups_merge_only_overlapping_labels():
    centres = [6564.6, 6585.3, 6725.5, 5008.2]
    names = ["Ha", "[NII]", "[SII]", "[OIII]"]
    groups = _label_groups(centres, names, lambda text: 15.0 * len(text.split(", ")))
    # Halpha and [NII] are 21 A apart: one label; [SII] and [OIII] stand alone
    assert [text for _, text, _ in groups] == ["[OIII]", "Ha, [NII]", "[SII]"]
    assert groups[1][0] == pytest.approx(0.5 * (6564.6 + 6585.3))
    # a merged label is wider: merging repeats until no two labels touch
    groups = _label_groups([0.0, 30.0, 75.0], ["a", "b", "c"], lambda t: 20.0 * len(t) / 1)
    assert [members for _, _, members in groups] == [["a", "b", "c"]]


def _band_bottom(line):
    """The bottom of a drawn spectrum's band (0.5th percentile, as plot_spectra stacks)."""
    return float(np.nanpercentile(line.get_ydata(), 0.5))


def test_plot_spectra_labels_sit_on_their_own_trace_inside_the_axes(spectra):
    wavelength, flux, _ = spectra
    # [OII] of the first spectrum lands 5 A from the left edge, [SII] of the last near the
    # right edge: their labels must be pulled inside, not cut
    z = [3845.0 / np.mean(EMISSION_LINES["[OII]"]) - 1, 0.05, 8900.0 / 6725.5 - 1]
    fig = plot_spectra(wavelength, flux, redshift=z, labels=["a", "b", "c"])
    fig.canvas.draw()
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    traces = ax.lines[:3]
    to_display = ax.transData.transform
    for text in _line_labels(ax):
        box = text.get_window_extent(renderer)
        assert frame.x0 - 1 <= box.x0 and box.x1 <= frame.x1 + 1, text.get_text()
        assert frame.y0 - 1 <= box.y0 and box.y1 <= frame.y1 + 1, text.get_text()
        # attached to its own trace: its colour, anchored between that spectrum's bottom and
        # the next one's, and the whole label below the next spectrum's band
        (i,) = [
            k
            for k, line in enumerate(traces)
            if to_rgba(line.get_color()) == to_rgba(text.get_color())
        ]
        x, y = text.xy
        assert _band_bottom(traces[i]) <= y
        assert box.y0 >= to_display((x, y))[1]  # above the point it names
        if i + 1 < len(traces):
            assert box.y1 <= to_display((x, _band_bottom(traces[i + 1])))[1] + 1
        # near that spectrum's flux under the label (within a label width, as the label's
        # width is estimated before the layout), not floating in the gap
        (x0, _), (x1, _) = ax.transData.inverted().transform([[box.x0, 0], [box.x1, 0]])
        under = (wavelength >= 2 * x0 - x1) & (wavelength <= 2 * x1 - x0)
        assert y <= np.nanmax(traces[i].get_ydata()[under])
    names = {i: set() for i in range(3)}
    for text in _line_labels(ax):
        (i,) = [
            k
            for k, line in enumerate(traces)
            if to_rgba(line.get_color()) == to_rgba(text.get_color())
        ]
        names[i] |= set(text.get_text().split(", "))
    assert "[OII]" in names[0] and "[SII]" in names[2]


def test_plot_spectra_names_a_quasars_broad_lines(spectra):
    wavelength, flux, _ = spectra
    z = 1.5  # Lyalpha at 3039 A: off the grid; C IV, C III], Mg II on it
    fig = plot_spectra(wavelength, flux[:2], redshift=z, object_type=["quasar", "galaxy"])
    ax = fig.axes[0]
    quasar, galaxy = (
        {n for t in _line_labels(ax) if t.get_color() == c for n in t.get_text().split(", ")}
        for c in ("C0", "C1")
    )
    expected = set(_visible_lines(wavelength, z, QUASAR_LINES)[1])
    assert {"C IV", "C III]", "Mg II"} <= expected
    assert quasar == expected
    assert r"Ly$\alpha$" not in quasar
    assert galaxy == set(_visible_lines(wavelength, z)[1])  # [OII] only
    # the SDSS class name works too, and a scalar applies to every spectrum
    fig = plot_spectra(wavelength, flux[0], redshift=z, object_type="QSO")
    assert _named(fig.axes[0]) == expected
    with pytest.raises(ValueError, match=r"`object_type` .* \(2\); got 3"):
        plot_spectra(wavelength, flux[:2], object_type=["quasar"] * 3)


# ------------------------------------------------------------------------------ target


def test_plot_target_distribution_groups():
    rng = np.random.default_rng(3)
    y = rng.normal(0.0, 1.0, 300)
    flag = pd.Series(rng.choice([0.0, 1.0, 2.0], 300), name="FLAG")
    fig = plot_target_distribution(y, groups=flag, noise_floor=0.4)
    assert isinstance(fig, Figure)
    ax_hist, ax_box = fig.axes
    # filled + outline histogram per group, plus the noise-floor band
    assert len(ax_hist.patches) == 2 * 3 + 1
    legend = [t.get_text() for t in ax_hist.get_legend().get_texts()]
    assert legend[:3] == [f"{g} (n={(flag == float(g)).sum()})" for g in ("0", "1", "2")]
    assert "noise floor" in legend[3]
    assert ax_hist.get_legend().get_title().get_text() == "FLAG"
    # one box per group (+ the band), labelled by group, on the same target axis
    assert len(ax_box.patches) == 3 + 1
    assert [t.get_text() for t in ax_box.get_yticklabels()] == ["0", "1", "2"]
    assert ax_box.get_shared_x_axes().joined(ax_hist, ax_box)
    assert ax_box.get_xlabel() == "log SFR [M_sun/yr]"
    _draw(fig)


def test_plot_target_distribution_single_and_strings():
    rng = np.random.default_rng(4)
    y = rng.normal(0.0, 1.0, 100)
    fig = plot_target_distribution(y, xlabel="t", bins=10, density=True)
    ax_hist, ax_box = fig.axes
    assert len(ax_hist.patches) == 2 and len(ax_box.patches) == 1
    assert ax_hist.get_ylabel() == "density" and ax_hist.get_xlabel() == "t"
    groups = np.where(np.arange(100) < 80, "galaxy", "quasar")
    fig = plot_target_distribution(y, groups=groups)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()] == ["galaxy", "quasar"]
    fig = plt.figure()
    assert plot_target_distribution(y, fig=fig) is fig


def test_plot_target_distribution_nan():
    y = np.array([0.1, np.nan, -1.0, np.inf, 0.5, 0.2])
    groups = np.array(["a", "a", "b", "b", "c", "c"])
    fig = plot_target_distribution(y, groups=groups, noise_floor=0.3)
    assert "2 non-finite dropped" in fig.axes[0].get_title()
    _draw(fig)
    # a group whose values are all NaN, and no finite value at all
    fig = plot_target_distribution([np.nan, 1.0, 2.0], groups=["x", "y", "y"])
    _draw(fig)
    fig = plot_target_distribution([np.nan, np.nan], groups=[0, 1], noise_floor=0.3)
    _draw(fig)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.zeros((3, 2))}, "`y`"),
        ({"y": []}, "`y`"),
        ({"y": np.zeros(3), "groups": [0, 1]}, "groups"),
        ({"y": np.zeros(3), "noise_floor": -0.1}, "noise_floor"),
        ({"y": np.zeros(3), "noise_floor": "big"}, "noise_floor"),
    ],
)
def test_plot_target_distribution_invalid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        plot_target_distribution(**kwargs)


# ------------------------------------------------------------------------------ save_figure


def test_save_figure_png(tmp_path):
    fig = plot_target_distribution(np.arange(10.0))
    path = tmp_path / "a" / "b" / "target.png"
    out = save_figure(fig, path)
    assert out == path
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in path.parent.iterdir()) == ["target.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    # overwriting is atomic too, and a str path works
    save_figure(fig, str(path), dpi=50)
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in path.parent.iterdir()) == ["target.png"]
    # the suffix picks the format
    save_figure(fig, tmp_path / "target.pdf")
    assert (tmp_path / "target.pdf").read_bytes()[:4] == b"%PDF"


def test_save_figure_failure_leaves_nothing(tmp_path):
    fig = plot_target_distribution(np.arange(10.0))
    path = tmp_path / "bad.png"
    with pytest.raises(ValueError):
        save_figure(fig, path, format="not-a-format")
    assert list(tmp_path.iterdir()) == []
    # an existing file survives a failed overwrite
    save_figure(fig, path)
    before = path.read_bytes()
    with pytest.raises(ValueError):
        save_figure(fig, path, format="not-a-format")
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["bad.png"]


def test_import_does_not_load_matplotlib():
    code = "import sys, sklearn_sfr.plotting; print('matplotlib' in sys.modules)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=root, check=True
    )
    assert result.stdout.strip() == "False"
