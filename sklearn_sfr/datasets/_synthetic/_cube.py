"""The public generator: :func:`simulate_objects` and :func:`make_synthetic_cube`."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._block import _simulate_block
from ._labels import _assign_types_and_flags

#: Bytes a synthetic object takes in the file (measured: 375.6 MB for 1,000 objects), for the
#: free-space check before a cube is built.
BYTES_PER_OBJECT = 380_000


def simulate_objects(
    n,
    *,
    random_state=None,
    flagged_fraction=0.2,
    quasar_fraction=1 / 11,
    neighbour_fraction=0.15,
    noise=True,
    first_index=0,
):
    """Simulate SDSS galaxies and quasars: cutouts, fibre spectra and MPA-JHU-like labels.

    Parameters
    ----------
    n : int
        Number of objects.
    random_state : int, numpy.random.Generator, numpy.random.SeedSequence or None
        Seed; the same seed gives the same arrays and tables.
    flagged_fraction : float, default=0.2
        Fraction of objects with FLAG != 0 labels (40% of them FLAG=1 with -99 sentinels,
        60% FLAG=2 with biased, wider labels).
    quasar_fraction : float, default=1/11
        Fraction of quasars, the same among FLAG=0 and flagged objects.
    neighbour_fraction : float, default=0.15
        Fraction of cutouts with one to three neighbouring galaxies or stars.
    noise : bool, default=True
        Add image and spectrum noise. The noise comes from its own random stream, so with
        False the arrays are exactly the noiseless models of the same objects (same
        conditions, masks, errors and labels), which tests use to compare the two modalities
        and to check the errors.
    first_index : int, default=0
        Index of the first object, which numbers the synthetic plates and fibres.

    Returns
    -------
    dict
        ``images``, ``image_errors``: float32 (n, 5, 64, 64), band order u, g, r, i, z, in
        cube units (nanomaggies times ``IMAGE_UNIT_PER_NMGY[band]``), errors the true 1-sigma;
        ``spectra``, ``spectrum_errors``: float32 (n, 4620) f_lambda [erg/s/cm^2/A] on
        ``wavelength_grid(0)``, masked pixels with error NaN (flux kept);
        ``spectrum_table``: DataFrame, one row per object, with the SDSS header keys
        (PLATEID, MJD, FIBERID, PLUG_RA, PLUG_DEC, TAI), MPA-JHU gal_info-like columns
        (RA, DEC, Z, Z_ERR, SUBCLASS, TARGETTYPE, SPECTROTYPE, SN_MEDIAN, V_DISP, E_BV_SFD),
        CLASS and the total-SFR columns AVG, ENTROPY, FLAG, MEDIAN, MODE, P16, P2P5, P84, P97P5;
        ``target_table``: DataFrame with ``object_type``, ``sf_class`` and the truth
        (``true_log_sfr``, ``true_log_mstar``, ``true_redshift``, ``true_dust_av``,
        ``true_mag_*``, ``fibre_fraction``, ...), ``label_sigma`` and the neighbour record
        (``n_neighbours``, ``neighbour_x``/``neighbour_y`` offsets of the brightest neighbour
        from the object's centre ``centre_x``/``centre_y`` in zoom-0 pixels, NaN when none,
        ``neighbour_mag_r``, ``neighbour_type``).

    See Also
    --------
    make_synthetic_cube : Write a whole synthetic HiSS-Cube file.

    Notes
    -----
    Population: log M* from the Baldry et al. (2012) mass function, redshifts uniform in
    comoving volume (FlatLambdaCDM, H0=70, Om0=0.3), kept if r < 17.77 (SDSS MAIN); quasars
    with i < 19.1, 0.3 < z < 2.5. Star formers lie on the Renzini & Peng (2015) main sequence,
    log SFR = 0.76 log M* - 7.64 (0.3 dex scatter, normalisation rising as (1+z)^3); quenched
    galaxies 1-1.5 dex below, their fraction rising with mass.

    Spectra: three analytic stellar populations (young, intermediate, old; mass-to-light
    ratios turn the SFR history into light) give the continuum, the 4000 A break and Balmer
    absorption; Calzetti et al. (2000) dust with E(B-V)_stars = 0.44 E(B-V)_gas and A_V from
    Garn & Best (2010); nebular lines from Kennicutt (1998), SFR = 7.9e-42 L(Halpha), case-B
    Balmer ratios and metallicity-dependent [NII], [OIII], [OII], [SII] (Tremonti et al. 2004,
    Pettini & Pagel 2004), Cardelli et al. (1989) attenuation; weak LINER-like emission in
    retired galaxies; quasars with the Vanden Berk et al. (2001) continuum, broad and narrow
    lines and the Madau (1995) forest. Only the seeing-convolved light inside the 3" fibre
    enters the spectrum (per component, bulge and disk apart, so the fibre misses the star
    formation in the outer disk); noise from object and sky photons with sky lines, a few per
    cent of masked pixels.

    Images: a Sersic bulge and an exponential disk (sizes from Shen et al. 2003) and a point
    source for quasars, colours from the total model spectrum through the SDSS filter curves
    (speclite ``sdss2010-*``), a double-Gaussian PSF with the SDSS seeing distribution, SDSS
    sky, gain and dark variance; some cutouts hold neighbouring galaxies or stars, whose light
    also leaks into the fibre.

    Labels: the truth plus a draw from a per-object split-normal likelihood whose P16-P84
    half width combines the fibre (Halpha S/N or D4000) and outside-fibre (colour) parts
    weighted by the fibre fraction, giving ~0.2-0.45 dex for star formers and 0.5-1.1 dex for
    weak-line, passive and quasar hosts (``shared/docs/data-formats.md`` 2.4).

    Examples
    --------
    >>> from sklearn_sfr.datasets._synthetic import simulate_objects
    >>> sim = simulate_objects(4, random_state=0)
    >>> sim["images"].shape, sim["spectra"].shape
    ((4, 5, 64, 64), (4, 4620))
    >>> table = sim["target_table"]
    >>> bool((table["fibre_fraction"] < 1).all())  # the 3" fibre misses the outskirts
    True
    >>> sim["spectrum_table"].loc[0, ["AVG", "P16", "P84", "FLAG"]].shape
    (4,)
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n}")
    _check_fraction("flagged_fraction", flagged_fraction)
    _check_fraction("quasar_fraction", quasar_fraction)
    _check_fraction("neighbour_fraction", neighbour_fraction)
    rng = np.random.default_rng(random_state)
    is_q, flag = _assign_types_and_flags(rng, n, quasar_fraction, flagged_fraction)
    return _simulate_block(
        rng, is_q, flag, int(first_index), neighbour_fraction=neighbour_fraction, noise=noise
    )


def _check_fraction(name, value):
    if not (isinstance(value, (int, float, np.floating, np.integer)) and 0 <= value < 1):
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")


def make_synthetic_cube(
    path,
    n_objects=None,
    *,
    n_flag0=11000,
    flagged_fraction=0.2,
    quasar_fraction=1 / 11,
    neighbour_fraction=0.15,
    random_state=0,
    block_size=1024,
    overwrite=False,
    verbose=False,
):
    """Write a physics-based synthetic HiSS-Cube file of SDSS-like galaxies and quasars.

    Parameters
    ----------
    path : str or path-like
        Output ``.h5`` file.
    n_objects : int, default=None
        Total number of objects (FLAG=0 and flagged). By default
        ``round(n_flag0 / (1 - flagged_fraction))``, about 13,750 objects of which 11,000 have
        FLAG=0 (10,000 galaxies and 1,000 quasars), as the thesis sample. Up to 150,000 for
        scale work.
    n_flag0 : int, default=11000
        Number of FLAG=0 objects when ``n_objects`` is None.
    flagged_fraction : float, default=0.2
        Fraction of objects with FLAG != 0 labels.
    quasar_fraction : float, default=1/11
        Fraction of quasars (among FLAG=0 and among flagged objects).
    neighbour_fraction : float, default=0.15
        Fraction of cutouts with neighbouring galaxies or stars.
    random_state : int or None, default=0
        Seed of a ``numpy.random.SeedSequence`` that spawns one independent seed per block
        (and one for the object types and flags), so a file is reproducible for a given
        ``random_state`` and ``block_size``. None draws fresh entropy, which is stored.
    block_size : int, default=1024
        Objects simulated and written at a time; bounds the memory (peak about 1.5 GB at
        1024).
    overwrite : bool, default=False
        Replace an existing file.
    verbose : bool, default=False
        Show a progress bar (on stderr, with the time left).

    Returns
    -------
    pathlib.Path
        The written file.

    See Also
    --------
    sklearn_sfr.datasets._synthetic.simulate_objects : One block simulated in memory.
    load_hisscube : Load the file for scikit-learn.

    Notes
    -----
    The physics is described in :func:`~sklearn_sfr.datasets._synthetic.simulate_objects`.
    The file follows the HiSS-Cube layout (:class:`HiSSCubeWriter`); besides the MPA-JHU-like
    label tables it holds the per-object truth (``sklearn_sfr_targets`` table) and the root
    attributes ``noise_floor``
    (RMSE of AVG against the true log SFR over FLAG=0 objects: the error no model can beat
    on average when it predicts AVG), ``generator`` and ``random_state``.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_sfr.datasets import make_synthetic_cube, HiSSCube
    >>> path = make_synthetic_cube(os.path.join(tempfile.mkdtemp(), "tiny.h5"), n_objects=20)
    >>> with HiSSCube(path) as cube:
    ...     print(cube.n_objects, round(cube.noise_floor, 2) > 0)
    20 True
    """
    from ...utils._outputs import check_output_file
    from .._writer import HiSSCubeWriter, is_sklearn_sfr_cube

    if n_objects is None:
        if int(n_flag0) < 1:
            raise ValueError(f"n_flag0 must be a positive integer, got {n_flag0!r}")
        _check_fraction("flagged_fraction", flagged_fraction)
        n_objects = round(int(n_flag0) / (1.0 - flagged_fraction))
    n = int(n_objects)
    if n < 1:
        raise ValueError(f"n_objects must be a positive integer, got {n_objects!r}")
    for name, value in (
        ("flagged_fraction", flagged_fraction),
        ("quasar_fraction", quasar_fraction),
        ("neighbour_fraction", neighbour_fraction),
    ):
        _check_fraction(name, value)
    block_size = int(block_size)
    if block_size < 1:
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    path = Path(path)
    # Before anything is simulated: an output we may not write, or a disk too small for the
    # cube, is refused now (n_objects=10**12 asks for hundreds of petabytes).
    size = n * BYTES_PER_OBJECT
    check_output_file(
        path, overwrite=overwrite, is_ours=is_sklearn_sfr_cube, size=size, kind="cube"
    )
    seed = np.random.SeedSequence(random_state)
    n_blocks = -(-n // block_size)
    children = seed.spawn(n_blocks + 1)
    is_q, flag = _assign_types_and_flags(
        np.random.default_rng(children[0]), n, quasar_fraction, flagged_fraction
    )
    spectrum_tables, target_tables = [], []
    sq_err, n_clean = 0.0, 0
    # Progress on stderr with an ETA (results go to stdout).
    bar = tqdm(total=n, desc=f"building {path.name}", unit=" objects", disable=not verbose)
    with (
        bar,
        HiSSCubeWriter(path, n_targets=n, n_spectra=n, overwrite=overwrite, size=size) as writer,
    ):
        for k in range(n_blocks):
            sl = slice(k * block_size, min(n, (k + 1) * block_size))
            block = _simulate_block(
                np.random.default_rng(children[k + 1]),
                is_q[sl],
                flag[sl],
                sl.start,
                neighbour_fraction=neighbour_fraction,
                noise=True,
            )
            writer.write_block(
                block["images"],
                block["image_errors"],
                block["spectra"],
                block["spectrum_errors"],
            )
            st, tt = block["spectrum_table"], block["target_table"]
            clean = st["FLAG"].to_numpy() == 0
            sq_err += float(
                np.sum((st["AVG"].to_numpy()[clean] - tt["true_log_sfr"].to_numpy()[clean]) ** 2)
            )
            n_clean += int(clean.sum())
            spectrum_tables.append(st)
            target_tables.append(tt)
            bar.update(sl.stop - sl.start)
        noise_floor = math.sqrt(sq_err / n_clean) if n_clean else float("nan")
        writer.set_tables(
            pd.concat(spectrum_tables, ignore_index=True),
            pd.concat(target_tables, ignore_index=True),
        )
        writer.attrs["noise_floor"] = float(noise_floor)
        writer.attrs["generator"] = "sklearn_sfr.datasets.make_synthetic_cube"
        entropy = seed.entropy
        writer.attrs["random_state"] = int(entropy) if entropy < 2**63 else str(entropy)
        writer.attrs["flagged_fraction"] = float(flagged_fraction)
        writer.attrs["quasar_fraction"] = float(quasar_fraction)
        writer.attrs["neighbour_fraction"] = float(neighbour_fraction)
        writer.attrs["block_size"] = int(block_size)
    return path
