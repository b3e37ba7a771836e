"""Physics checks of the synthetic HiSS-Cube generator (``sklearn_sfr.datasets._synthetic``).

The synthetic cube must behave like SDSS for the reasons a model could exploit: line fluxes
follow the star-formation rate, quenched galaxies are red, the fibre sees the centre of what
the image shows, noise matches its stated errors, and the labels carry MPA-JHU-like noise
that is worse for flagged objects.
"""

import h5py
import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr

from sklearn_sfr.datasets._layout import (
    BAND_NAMES,
    IMAGE_UNIT_PER_NMGY,
    PIXEL_SCALE,
    SFR_TABLE_KEY,
    TARGET_TABLE_KEY,
    wavelength_grid,
)
from sklearn_sfr.datasets._synthetic import make_synthetic_cube, simulate_objects

UNIT = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES])
LAM = wavelength_grid(0)
HALPHA = 6564.614


@pytest.fixture(scope="module")
def galaxies():
    """Isolated galaxies with noise, no flags: the physics sample."""
    return simulate_objects(
        500, random_state=7, quasar_fraction=0.0, flagged_fraction=0.0, neighbour_fraction=0.0
    )


@pytest.fixture(scope="module")
def mixed():
    """Galaxies and quasars with half of the labels flagged."""
    return simulate_objects(600, random_state=8, flagged_fraction=0.5, neighbour_fraction=0.2)


@pytest.fixture(scope="module")
def noiseless():
    """Noise-free galaxies and quasars, to compare the two modalities exactly."""
    return simulate_objects(
        60,
        random_state=3,
        noise=False,
        flagged_fraction=0.0,
        neighbour_fraction=0.0,
        quasar_fraction=0.15,
    )


def _nanomaggies(images):
    return images / UNIT[None, :, None, None]


def _aperture_sum(images, cx, cy, radius_px, sub=10):
    """Circular-aperture sums (n, bands) with sub-pixel accuracy, independent of the generator."""
    n, _, h, w = images.shape
    ys, xs = np.mgrid[: h * sub, : w * sub]
    xs = (xs + 0.5) / sub - 0.5
    ys = (ys + 0.5) / sub - 0.5
    out = np.empty(images.shape[:2])
    for i in range(n):
        inside = (xs - cx[i]) ** 2 + (ys - cy[i]) ** 2 <= radius_px**2
        weight = inside.reshape(h, sub, w, sub).mean(axis=(1, 3))
        out[i] = np.sum(images[i] * weight, axis=(1, 2))
    return out


def _halpha_flux(spectra, errors, z):
    """Continuum-subtracted Halpha flux [erg/s/cm^2] measured in a +-8 A (rest) window."""
    dl = LAM[1] - LAM[0]
    out = np.full(len(z), np.nan)
    for i, zi in enumerate(z):
        rest = LAM / (1 + zi)
        good = np.isfinite(errors[i])
        side = good & (((rest > 6480) & (rest < 6530)) | ((rest > 6605) & (rest < 6650)))
        line = np.abs(rest - HALPHA) < 8.0
        if side.sum() < 10 or line.sum() < 5:
            continue
        cont = np.median(spectra[i, side])
        flux = np.where(good[line], spectra[i, line], cont)
        out[i] = np.sum(flux - cont) * dl
    return out


def test_arrays_tables_and_units(mixed):
    n = len(mixed["target_table"])
    assert mixed["images"].shape == (n, 5, 64, 64)
    assert mixed["image_errors"].shape == (n, 5, 64, 64)
    assert mixed["spectra"].shape == (n, len(LAM))
    for key in ("images", "image_errors", "spectra", "spectrum_errors"):
        assert mixed[key].dtype == np.float32
    assert np.all(np.isfinite(mixed["images"])) and np.all(mixed["image_errors"] > 0)
    assert np.all(np.isfinite(mixed["spectra"]))
    masked = np.isnan(mixed["spectrum_errors"])
    assert 0.005 < masked.mean() < 0.1  # "a few per cent", as real and_mask rates (3.8-5.2 %)
    assert np.all(mixed["spectrum_errors"][~masked] > 0)
    # Fluxes in f_lambda cgs (~1e-17) and images in cube units (nanomaggies x unit).
    assert 1e-18 < np.median(mixed["spectra"]) < 1e-15
    st, tt = mixed["spectrum_table"], mixed["target_table"]
    for col in ("PLATEID", "MJD", "FIBERID", "PLUG_RA", "PLUG_DEC", "TAI", "RA", "DEC", "Z",
                "Z_ERR", "SUBCLASS", "TARGETTYPE", "SPECTROTYPE", "SN_MEDIAN", "CLASS", "AVG",
                "ENTROPY", "FLAG", "MEDIAN", "MODE", "P16", "P2P5", "P84", "P97P5"):  # fmt: skip
        assert col in st.columns, col
    for col in ("object_type", "true_log_sfr", "true_log_mstar", "true_redshift", "true_dust_av",
                "sf_class", "n_neighbours", "neighbour_x", "neighbour_y", "neighbour_mag_r",
                "fibre_fraction"):  # fmt: skip
        assert col in tt.columns, col
    assert not st.duplicated(["PLATEID", "MJD", "FIBERID"]).any()
    assert set(st["CLASS"]) == {"GALAXY", "QSO"}
    assert set(tt["object_type"]) == {"galaxy", "quasar"}
    assert (st["CLASS"] == "QSO").eq(tt["object_type"] == "quasar").all()


def test_population_follows_main_sequence_and_selection(galaxies):
    tt = galaxies["target_table"]
    sf = tt["sf_class"] == "star-forming"
    slope = np.polyfit(tt["true_log_mstar"][sf], tt["true_log_sfr"][sf], 1)[0]
    assert 0.5 < slope < 1.0  # Renzini & Peng (2015): 0.76
    # Quenched galaxies sit about 1-1.5 dex below star formers of the same mass.
    ms = 0.76 * tt["true_log_mstar"] - 7.64
    offset = np.median((tt["true_log_sfr"] - ms)[~sf]) - np.median((tt["true_log_sfr"] - ms)[sf])
    assert -1.8 < offset < -0.8
    # The quenched fraction rises with mass.
    q = ~sf
    lo, hi = tt["true_log_mstar"] < 10.4, tt["true_log_mstar"] > 10.9
    assert q[hi].mean() > q[lo].mean() + 0.2
    # Flux-limited MAIN-like sample: r < 17.77, redshifts peaking around 0.1.
    assert tt["true_mag_r"].max() < 18.3
    assert 0.05 < tt["true_redshift"].median() < 0.15


def test_halpha_flux_rises_with_sfr(galaxies):
    tt = galaxies["target_table"]
    z = tt["true_redshift"].to_numpy()
    sel = (z > 0.05) & (z < 0.11)  # fixed-ish distance
    flux = _halpha_flux(galaxies["spectra"][sel], galaxies["spectrum_errors"][sel], z[sel])
    ok = np.isfinite(flux)
    assert ok.sum() > 100
    rho, p = spearmanr(flux[ok], tt["true_log_sfr"].to_numpy()[sel][ok])
    assert rho > 0.6 and p < 1e-10
    # The fibre sees the disk's centre: measured Halpha tracks the truth-table fibre flux.
    rho_true, _ = spearmanr(flux[ok], tt["true_halpha_flux"].to_numpy()[sel][ok])
    assert rho_true > 0.8


def test_quenched_galaxies_are_redder_in_images_and_spectra(galaxies):
    tt = galaxies["target_table"]
    img = _nanomaggies(galaxies["images"])
    flux = _aperture_sum(img[:, 1:3], tt["centre_x"].to_numpy(), tt["centre_y"].to_numpy(), 10.0)
    good = np.all(flux > 0, axis=1)
    g_r = -2.5 * np.log10(flux[good, 0] / flux[good, 1])
    cls = tt["sf_class"].to_numpy()[good]
    red = np.median(g_r[cls == "quenched"])
    blue = np.median(g_r[cls == "star-forming"])
    assert red > blue + 0.2
    assert 0.3 < blue < 0.8 and 0.75 < red < 1.15  # SDSS blue cloud / red sequence at z~0.1
    # The 4000 A break, measured on the spectra (F_nu averages, Balogh et al. 1999).
    z = tt["true_redshift"].to_numpy()
    fnu = galaxies["spectra"] * LAM[None, :] ** 2
    rest = LAM[None, :] / (1 + z[:, None])
    ok = np.isfinite(galaxies["spectrum_errors"])
    red_band = ok & (rest > 4000) & (rest < 4100)
    blue_band = ok & (rest > 3850) & (rest < 3950)
    use = (blue_band.sum(1) > 30) & (red_band.sum(1) > 30) & (z > 0.03)
    with np.errstate(invalid="ignore", divide="ignore"):
        dn = (np.sum(fnu * red_band, 1) / red_band.sum(1)) / (
            np.sum(fnu * blue_band, 1) / blue_band.sum(1)
        )
    sf = tt["sf_class"].to_numpy() == "star-forming"
    assert np.median(dn[use & ~sf]) > np.median(dn[use & sf]) + 0.3


def test_fibre_spectrum_matches_image_aperture_photometry(noiseless):
    """The spectrum sees the seeing-convolved light inside the 3" fibre that the image shows."""
    import speclite.filters

    tt = noiseless["target_table"]
    img = _nanomaggies(noiseless["images"])
    radius = 0.5 * 3.0 / PIXEL_SCALE
    ap = _aperture_sum(img, tt["centre_x"].to_numpy(), tt["centre_y"].to_numpy(), radius)
    filters = speclite.filters.load_filters("sdss2010-g", "sdss2010-r", "sdss2010-i")
    # g starts at 3619 A, below the cube grid: pad with the edge value, as speclite suggests.
    spec, wl = filters.pad_spectrum(noiseless["spectra"].astype(np.float64), LAM, method="edge")
    maggies = np.stack([f.get_ab_maggies(spec, wl) for f in filters], axis=1) * 1e9
    ratio = maggies / ap[:, 1:4]
    assert np.all(np.abs(ratio - 1) < 0.03), ratio
    # The image holds the whole galaxy: the fibre catches only part of the light.
    total = img[:, 2].sum(axis=(1, 2))
    galaxy = (tt["object_type"] == "galaxy").to_numpy()
    assert np.median(ap[galaxy, 2] / total[galaxy]) < 0.6
    np.testing.assert_allclose(
        ap[:, 2] / 10 ** (-0.4 * (tt["true_mag_r"] - 22.5)), tt["fibre_fraction"], rtol=0.02
    )


def test_noise_matches_stated_errors(galaxies):
    # noise=False is the exact noiseless version of the same objects, so the difference is the
    # noise alone: it must be Gaussian with the stated 1-sigma errors.
    kwargs = dict(random_state=9, neighbour_fraction=0.3)
    noisy = simulate_objects(40, **kwargs)
    clean = simulate_objects(40, noise=False, **kwargs)
    np.testing.assert_array_equal(noisy["image_errors"], clean["image_errors"])
    np.testing.assert_array_equal(noisy["spectrum_errors"], clean["spectrum_errors"])
    pull = (noisy["images"] - clean["images"]) / noisy["image_errors"]
    np.testing.assert_allclose(pull.std(axis=(0, 2, 3)), 1.0, atol=0.02)
    assert abs(pull.mean()) < 0.01
    err = noisy["spectrum_errors"]
    ok = np.isfinite(err)
    pull = ((noisy["spectra"] - clean["spectra"]) / np.where(ok, err, 1.0))[ok]
    assert abs(pull.std() - 1.0) < 0.02 and abs(pull.mean()) < 0.01
    # SDSS-like levels: the z-band sky is the brightest; median S/N per pixel 5-15.
    assert galaxies["image_errors"][:, 4].mean() > galaxies["image_errors"][:, 1].mean()
    assert 5 < galaxies["spectrum_table"]["SN_MEDIAN"].median() < 15


def test_labels_follow_mpa_conventions(mixed):
    st, tt = mixed["spectrum_table"], mixed["target_table"]
    flag = st["FLAG"].to_numpy()
    assert set(np.unique(flag)) == {0.0, 1.0, 2.0}
    f1 = flag == 1
    for col in ("AVG", "MEDIAN", "MODE", "P16", "P2P5", "P84", "P97P5"):
        assert np.all(st[col][f1] == -99.0)
    assert np.all(st["ENTROPY"][f1] == 0.0)
    ok = ~f1
    q = st[ok]
    assert np.all(q["P2P5"] <= q["P16"]) and np.all(q["P16"] <= q["MEDIAN"])
    assert np.all(q["MEDIAN"] <= q["P84"]) and np.all(q["P84"] <= q["P97P5"])
    np.testing.assert_allclose(q["MODE"] / 0.05, np.round(q["MODE"] / 0.05), atol=1e-9)
    assert q["ENTROPY"].between(-7.5, -3.5).all()
    # P16-P84 half widths as wide as MPA-JHU's (data-formats 2.4).
    clean = flag == 0
    half = 0.5 * (st["P84"] - st["P16"])
    sf = clean & (tt["sf_class"] == "star-forming").to_numpy()
    passive = clean & (tt["sf_class"] == "quenched").to_numpy()
    assert 0.15 < half[sf].median() < 0.45
    assert 0.45 < half[passive].median() < 1.1
    # Calibrated: the truth lies inside P16-P84 about 68 % of the time.
    inside = (tt["true_log_sfr"] >= st["P16"]) & (tt["true_log_sfr"] <= st["P84"])
    assert 0.6 < inside[clean].mean() < 0.76


def test_flagged_labels_are_biased_and_noisier(mixed):
    st, tt = mixed["spectrum_table"], mixed["target_table"]
    resid = st["AVG"] - tt["true_log_sfr"]
    f0 = st["FLAG"] == 0
    f2 = st["FLAG"] == 2
    rmse0 = np.sqrt(np.mean(resid[f0] ** 2))
    rmse2 = np.sqrt(np.mean(resid[f2] ** 2))
    assert rmse2 > 1.5 * rmse0
    assert abs(resid[f2].mean()) > 0.2 > abs(resid[f0].mean())
    # Both kinds of flag hit galaxies and quasars alike (the quasar fraction is stratified).
    quasar = tt["object_type"] == "quasar"
    for value in (0, 1, 2):
        share = quasar[st["FLAG"] == value].mean()
        assert share == pytest.approx(1 / 11, abs=0.02)


def test_neighbours_are_in_the_images_and_recorded():
    sim = simulate_objects(
        30, random_state=4, neighbour_fraction=0.99, flagged_fraction=0.0, quasar_fraction=0.0
    )
    tt = sim["target_table"]
    assert (tt["n_neighbours"] >= 1).all()
    x = (tt["centre_x"] + tt["neighbour_x"]).to_numpy()
    y = (tt["centre_y"] + tt["neighbour_y"]).to_numpy()
    img = _nanomaggies(sim["images"][:, 2:3])
    at = _aperture_sum(img, x, y, 2.0)[:, 0]
    # Same distance on the opposite side of the object.
    mx = (2 * tt["centre_x"] - x).to_numpy()
    my = (2 * tt["centre_y"] - y).to_numpy()
    opposite = _aperture_sum(img, mx, my, 2.0)[:, 0]
    assert np.mean(at > opposite) > 0.8
    alone = simulate_objects(10, random_state=4, neighbour_fraction=0.0)["target_table"]
    assert (alone["n_neighbours"] == 0).all() and alone["neighbour_x"].isna().all()


def test_same_seed_same_arrays():
    a = simulate_objects(6, random_state=11)
    b = simulate_objects(6, random_state=11)
    c = simulate_objects(6, random_state=12)
    for key in ("images", "image_errors", "spectra", "spectrum_errors"):
        np.testing.assert_array_equal(a[key], b[key])
    pd.testing.assert_frame_equal(a["spectrum_table"], b["spectrum_table"])
    pd.testing.assert_frame_equal(a["target_table"], b["target_table"])
    assert not np.array_equal(a["spectra"], c["spectra"])


def _datasets(path):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu":
            out[name] = obj[()]

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def test_cube_noise_floor_and_reproducibility(tmp_path):
    kwargs = dict(n_objects=24, block_size=10, random_state=3)
    a = make_synthetic_cube(tmp_path / "a.h5", **kwargs)
    b = make_synthetic_cube(tmp_path / "b.h5", **kwargs)
    with h5py.File(a, "r") as f:
        stored = float(f.attrs["noise_floor"])
        assert f.attrs["generator"] == "sklearn_sfr.datasets.make_synthetic_cube"
        assert int(f.attrs["random_state"]) == 3
    labels = pd.read_hdf(a, SFR_TABLE_KEY)
    truth = pd.read_hdf(a, TARGET_TABLE_KEY)
    clean = labels["FLAG"].to_numpy() == 0
    recomputed = np.sqrt(
        np.mean((labels["AVG"].to_numpy() - truth["true_log_sfr"].to_numpy())[clean] ** 2)
    )
    assert stored == pytest.approx(recomputed, rel=1e-12)
    da, db = _datasets(a), _datasets(b)
    assert da.keys() == db.keys() and len(da) > 10
    for name in da:
        np.testing.assert_array_equal(da[name], db[name], err_msg=name)
    pd.testing.assert_frame_equal(truth, pd.read_hdf(b, TARGET_TABLE_KEY))
    with pytest.raises(FileExistsError):
        make_synthetic_cube(tmp_path / "a.h5", **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(flagged_fraction=1.0),
        dict(quasar_fraction=-0.1),
        dict(neighbour_fraction=1.5),
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError, match="fraction"):
        simulate_objects(3, random_state=0, **kwargs)


def test_bad_sizes(tmp_path):
    with pytest.raises(ValueError, match="positive"):
        simulate_objects(0)
    with pytest.raises(ValueError, match="positive"):
        make_synthetic_cube(tmp_path / "x.h5", n_objects=0)
    with pytest.raises(ValueError, match="block_size"):
        make_synthetic_cube(tmp_path / "x.h5", n_objects=3, block_size=0)
