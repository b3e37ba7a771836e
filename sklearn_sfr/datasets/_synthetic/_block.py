"""Simulation of one block of objects: population, spectra, images, noise, labels, tables."""

import warnings

import numpy as np

from .._layout import BAND_NAMES, IMAGE_UNIT_PER_NMGY, wavelength_grid
from ._constants import QSO_FWHM_KMS
from ._fibre import _fibre_spectrum
from ._images import _render_images
from ._labels import _draw_labels, _label_width, _sfr_from_lines
from ._lines import _add_lines, _line_luminosities, _observed_lines
from ._measurements import _dn4000, _measure_halpha
from ._neighbours import _draw_neighbours, _slot_maggies
from ._photometry import _component_maggies
from ._population import _draw_geometry, _draw_population
from ._spectra import _component_spectra
from ._spectrograph import _add_spectrum_noise, _spectrum_mask, _spectrum_sigma
from ._tables import _spectrum_table, _target_table


def _simulate_block(rng, is_q, flag, first_index, *, neighbour_fraction, noise):
    """Simulate one block: objects of the given types (``is_q``) and label flags."""
    # Objects without any usable pixel in a window give NaN medians: expected, not news.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        warnings.filterwarnings("ignore", "Mean of empty slice", RuntimeWarning)
        return _simulate_block_impl(
            rng, is_q, flag, first_index, neighbour_fraction=neighbour_fraction, noise=noise
        )


def _simulate_block_impl(rng, is_q, flag, first_index, *, neighbour_fraction, noise):
    n = len(is_q)
    lam = wavelength_grid(0)
    # Noise draws come from their own stream, so noise=False gives exactly the noiseless
    # version of the noisy block (same objects, conditions, masks and errors).
    noise_rng = rng.spawn(1)[0]
    pop = _draw_population(rng, is_q)
    pop["broad_fwhm"] = QSO_FWHM_KMS * 10 ** rng.normal(0.0, 0.15, n)
    pop["broad_ew_scale"] = 10 ** rng.normal(0.0, 0.15, n)
    geo = _draw_geometry(rng, pop)
    lum_sf, lum_lin, lum_agn = _line_luminosities(pop, rng)
    lam_lines, f_lines, s_lines = _observed_lines(pop, lum_sf, lum_lin, lum_agn)

    # Photometry of each component: continuum through speclite on a wide grid, narrow lines
    # analytically through the same filter curves.
    comp_maggies = _component_maggies(pop, lam_lines, f_lines)
    total_maggies = comp_maggies.sum(axis=1)
    mag = -2.5 * np.log10(np.maximum(total_maggies, 1e-30))

    # Component spectra on the cube grid, with the narrow lines.
    comp = _component_spectra(pop, lam)
    for c in range(3):
        view = comp[:, c]  # a view: _add_lines writes into comp
        _add_lines(view, lam, lam_lines, f_lines[:, c], s_lines[:, c], half_width=30)

    # Neighbours: a rescaled copy of another galaxy of the block, or a star.
    nb = _draw_neighbours(rng, pop, mag[:, 2], neighbour_fraction)
    maggies, nb_scale, star_norm = _slot_maggies(nb, comp_maggies, total_maggies, mag)

    images, image_errors, fibre = _render_images(noise_rng, pop, geo, maggies, nb, noise)

    # The fibre spectrum: each component weighted by its seeing-convolved fibre fraction.
    model = _fibre_spectrum(lam, comp, fibre, nb, nb_scale, star_norm)
    del comp

    # Spectroscopic noise: photon noise of object and sky, read noise, sky-subtraction residuals.
    sigma = _spectrum_sigma(rng, model)
    mask = _spectrum_mask(rng, n, lam)
    flux = _add_spectrum_noise(noise_rng, model, sigma, mask, noise)
    spec_err = np.where(mask, np.nan, sigma)
    with np.errstate(invalid="ignore", divide="ignore"):
        sn_median = np.nanmedian(np.where(mask, np.nan, flux / sigma), axis=1)

    # Line measurements that set the label width: Halpha in the fibre.
    halpha = _measure_halpha(lam, model, sigma, fibre, lam_lines, f_lines, s_lines, pop["z"])
    dn4000 = _dn4000(lam, model, pop["z"])

    # Labels: the MPA-JHU-like total SFR posterior.
    sf_lines = _sfr_from_lines(halpha, pop["quenched"])
    label_sigma, skew = _label_width(rng, halpha, sf_lines, pop["quenched"], is_q)
    labels = _draw_labels(rng, pop["log_sfr"], label_sigma, skew, flag)

    # Tables.
    spectrum_table = _spectrum_table(
        rng, pop, first_index, sn_median=sn_median, halpha=halpha, sf_lines=sf_lines, labels=labels
    )
    target_table = _target_table(
        pop,
        geo,
        nb,
        flag=flag,
        labels=labels,
        halpha=halpha,
        dn4000=dn4000,
        mag=mag,
        comp_maggies=comp_maggies,
        maggies=maggies,
        fibre=fibre,
    )
    unit = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES], dtype=np.float64)
    return {
        "images": (images * unit[None, :, None, None]).astype(np.float32),
        "image_errors": (image_errors * unit[None, :, None, None]).astype(np.float32),
        "spectra": flux.astype(np.float32),
        "spectrum_errors": spec_err.astype(np.float32),
        "spectrum_table": spectrum_table,
        "target_table": target_table,
    }
