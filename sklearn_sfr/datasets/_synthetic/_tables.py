"""Per-object tables: SDSS header, MPA-JHU-like and label columns; the truth table."""

import numpy as np
import pandas as pd

from .._layout import BAND_NAMES
from ._constants import FIBRES_PER_PLATE, FIRST_MJD, FIRST_PLATE


def _spectrum_table(rng, pop, first_index, *, sn_median, halpha, sf_lines, labels):
    """The spectrum table (see :func:`simulate_objects`): SDSS header keys, MPA-JHU
    gal_info-like columns, CLASS and the total-SFR ``labels``, one row per object."""
    is_q = pop["is_q"]
    n = len(is_q)
    gidx = first_index + np.arange(n)
    plate = FIRST_PLATE + gidx // FIBRES_PER_PLATE
    mjd = FIRST_MJD + (plate * 37) % 3000
    fiber = gidx % FIBRES_PER_PLATE + 1
    ra = rng.uniform(120.0, 240.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(0.0, np.sin(np.radians(60.0)), n)))
    z_err = np.where(is_q, 10 ** rng.uniform(-3.5, -2.8, n), 10 ** rng.uniform(-5.2, -4.5, n))
    z_err = z_err * (1 + pop["z"])
    starburst = sf_lines & (halpha["ew"] > 50)
    subclass = np.select(
        [is_q, starburst, sf_lines, pop["quenched"] & (halpha["sn"] > 5) & (halpha["ew"] > 1.0)],
        ["BROADLINE", "STARBURST", "STARFORMING", "AGN"],
        "",
    )
    cls = np.where(is_q, "QSO", "GALAXY")
    return pd.DataFrame(
        {
            "PLATEID": plate.astype(np.int32),
            "MJD": mjd.astype(np.int32),
            "FIBERID": fiber.astype(np.int32),
            "PLUG_RA": ra,
            "PLUG_DEC": dec,
            "TAI": (mjd + 0.15 + 0.2 * rng.random(n)) * 86400.0,
            "RA": ra,
            "DEC": dec,
            "Z": pop["z"] + z_err * rng.standard_normal(n),
            "Z_ERR": z_err,
            "SUBCLASS": subclass,
            "TARGETTYPE": cls,
            "SPECTROTYPE": cls,
            "SN_MEDIAN": sn_median,
            "CLASS": cls,
            "V_DISP": pop["sigma_v"] * (1 + 0.08 * rng.standard_normal(n)),
            "E_BV_SFD": pop["ebv_sfd"],
            **labels,
        }
    )


def _target_table(
    pop, geo, nb, *, flag, labels, halpha, dn4000, mag, comp_maggies, maggies, fibre
):
    """The truth table (see :func:`simulate_objects`): object type, true physical quantities,
    label width and the neighbour record, one row per object."""
    is_q = pop["is_q"]
    n = len(is_q)
    main_r = comp_maggies[:, :, 2]
    fibre_r = np.sum(main_r * fibre[:, :3, 2], axis=1)
    bright = np.argmin(np.where(nb["kind"] > 0, nb["mag_r"], np.inf), axis=1)
    has_nb = nb["kind"].max(axis=1) > 0
    rows = np.arange(n)
    nb_r = np.sum(maggies[:, 3:, 2] * (nb["kind"] > 0), axis=1)
    target = {
        "object_type": np.where(is_q, "quasar", "galaxy"),
        "sf_class": np.where(
            is_q, "quasar", np.where(pop["quenched"], "quenched", "star-forming")
        ),
        "true_log_sfr": pop["log_sfr"],
        "true_log_sfr_fibre": pop["log_sfr"]
        + np.log10(np.maximum(halpha["disk_fibre_fraction"], 1e-6)),
        "true_log_mstar": pop["log_m"],
        "true_redshift": pop["z"],
        "true_dust_av": pop["av_gas"],
        "true_dust_av_stars": pop["av_stars"],
        "true_log_l5100": pop["log_l5100"],
        "true_dn4000": dn4000,
        "true_halpha_flux": halpha["flux"],
        "true_halpha_ew": halpha["ew"],
        "true_halpha_sn": halpha["sn"],
        "label_sigma": np.where(flag == 1, np.nan, 0.5 * (labels["P84"] - labels["P16"])),
    }
    for b, band in enumerate(BAND_NAMES):
        target[f"true_mag_{band}"] = mag[:, b]
    target.update(
        {
            "true_fibre_mag_r": -2.5 * np.log10(np.maximum(fibre_r, 1e-30)),
            "fibre_fraction": fibre_r / main_r.sum(axis=1),
            "true_bulge_fraction_r": main_r[:, 0] / main_r.sum(axis=1),
            "true_agn_fraction_r": main_r[:, 2] / main_r.sum(axis=1),
            "true_re_disk_arcsec": geo["re_disk_arcsec"],
            "true_re_bulge_arcsec": geo["re_bulge_arcsec"],
            "true_sersic_n_bulge": geo["n_bulge"],
            "true_axis_ratio_disk": geo["q_disk"],
            "true_seeing_r": geo["seeing_r"],
            "centre_x": geo["centre_x"],
            "centre_y": geo["centre_y"],
            "n_neighbours": (nb["kind"] > 0).sum(axis=1).astype(np.int64),
            "neighbour_type": np.where(
                has_nb, np.array(["", "galaxy", "star"])[nb["kind"][rows, bright]], ""
            ),
            "neighbour_x": np.where(has_nb, nb["x"][rows, bright], np.nan),
            "neighbour_y": np.where(has_nb, nb["y"][rows, bright], np.nan),
            "neighbour_mag_r": np.where(has_nb, nb["mag_r"][rows, bright], np.nan),
            "neighbour_flux_ratio_r": nb_r / main_r.sum(axis=1),
            "neighbour_fibre_fraction_r": np.sum(
                maggies[:, 3:, 2] * fibre[:, 3:, 2] * (nb["kind"] > 0), axis=1
            )
            / (fibre_r + np.sum(maggies[:, 3:, 2] * fibre[:, 3:, 2] * (nb["kind"] > 0), axis=1)),
        }
    )
    return pd.DataFrame(target)
