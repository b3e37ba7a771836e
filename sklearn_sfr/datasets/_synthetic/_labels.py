"""MPA-JHU-like SFR labels: object types and FLAGs, label widths and posterior summaries."""

import numpy as np

from ._constants import (
    ENTROPY_GRID,
    FLAG1_SHARE,
    FLAG2_BIAS_MEAN,
    FLAG2_BIAS_SD,
    FLAG2_WIDTH_FACTOR,
    LABEL_SIGMA_D4000,
    LABEL_SIGMA_FLOOR,
    LABEL_SIGMA_LINES,
    LABEL_SIGMA_OUT_BLUE,
    LABEL_SIGMA_OUT_RED,
    LABEL_SIGMA_QSO,
    LABEL_SIGMA_RANGE,
    LABEL_SIGMA_SPREAD,
    MODE_STEP,
    SENTINEL,
)


def _assign_types_and_flags(rng, n, quasar_fraction, flagged_fraction):
    """Exact numbers of quasars and flagged objects, stratified so that FLAG=0 and each flagged
    kind keep the quasar fraction."""
    n_flagged = round(flagged_fraction * n)
    n_flag1 = round(FLAG1_SHARE * n_flagged)
    flag = np.zeros(n, dtype=np.int8)
    flag[:n_flag1] = 1
    flag[n_flag1:n_flagged] = 2
    is_q = np.zeros(n, dtype=bool)
    for lo, hi in ((0, n_flag1), (n_flag1, n_flagged), (n_flagged, n)):
        k = round(quasar_fraction * (hi - lo))
        is_q[lo + rng.choice(hi - lo, k, replace=False)] = True
    perm = rng.permutation(n)
    return is_q[perm], flag[perm]


def _sfr_from_lines(halpha, quenched):
    """Objects whose fibre SFR comes from Halpha: the line on the spectrum at S/N > 3, mostly
    from star formation, in a galaxy that is not quenched (the others get LABEL_SIGMA_D4000)."""
    return (
        halpha["in_range"]
        & (halpha["sn"] > 3)
        & (halpha["flux_sf"] > 0.5 * halpha["flux"])
        & ~quenched
    )


def _label_width(rng, halpha, sf_lines, quenched, is_q):
    """Per-object half width [dex] of the P16-P84 range and skew of the SFR likelihood.

    The fibre part (Halpha S/N when ``sf_lines``, else D4000) and the outside-fibre part
    (colours) are weighted by the disk's fibre fraction at Halpha; quasar hosts get
    LABEL_SIGMA_QSO.
    """
    n = len(is_q)
    w_in = np.clip(halpha["disk_fibre_fraction"], 0.0, 1.0)
    sig_fib = np.where(
        sf_lines,
        np.hypot(LABEL_SIGMA_LINES, 1.5 * 0.434 / np.maximum(halpha["sn"], 1e-3)),
        LABEL_SIGMA_D4000,
    )
    sig_out = np.where(quenched, LABEL_SIGMA_OUT_RED, LABEL_SIGMA_OUT_BLUE)
    label_sigma = np.sqrt(
        (w_in * sig_fib) ** 2 + ((1 - w_in) * sig_out) ** 2 + LABEL_SIGMA_FLOOR**2
    ) * np.exp(rng.normal(0.0, LABEL_SIGMA_SPREAD, n))
    label_sigma = np.where(is_q, rng.uniform(*LABEL_SIGMA_QSO, n), label_sigma)
    label_sigma = np.clip(label_sigma, *LABEL_SIGMA_RANGE)
    skew = np.where(sf_lines & ~is_q, np.exp(rng.normal(0.0, 0.05, n)), np.sqrt(1.3 / 0.7))
    return label_sigma, skew


def _split_normal_quantile(p, mode, s_lo, s_hi):
    from scipy.special import ndtri

    p = np.asarray(p)
    tot = s_lo + s_hi
    left = p < s_lo / tot
    q_left = mode + s_lo * ndtri(np.clip(p * tot / (2 * s_lo), 1e-12, 1 - 1e-12))
    q_right = mode + s_hi * ndtri(np.clip((p * tot - s_lo + s_hi) / (2 * s_hi), 1e-12, 1 - 1e-12))
    return np.where(left, q_left, q_right)


def _draw_labels(rng, true_log_sfr, sigma, skew, flag):
    """MPA-JHU-like posterior summaries around the true log SFR.

    The likelihood is a split normal with left/right widths ``sigma * skew`` and
    ``sigma / skew``; its mean (AVG) is the truth displaced by a draw from the same shape, so
    the truth lies inside P16-P84 about 68% of the time. FLAG=2 labels are biased and wider;
    FLAG=1 rows carry the -99 sentinels.
    """
    n = len(true_log_sfr)
    sigma = np.array(sigma, dtype=np.float64)
    skew = np.array(skew, dtype=np.float64)
    bias = np.zeros(n)
    f2 = flag == 2
    sigma[f2] *= rng.uniform(*FLAG2_WIDTH_FACTOR, f2.sum())
    skew[f2] = np.sqrt(rng.uniform(1.0, 4.0, f2.sum()))
    bias[f2] = rng.normal(FLAG2_BIAS_MEAN, FLAG2_BIAS_SD, f2.sum())
    s_lo, s_hi = sigma * skew, sigma / skew
    shift = np.sqrt(2 / np.pi) * (s_hi - s_lo)  # mean - mode of the split normal
    draw = _split_normal_quantile(rng.random(n), 0.0, s_lo, s_hi) - shift  # zero mean
    avg = true_log_sfr + bias - draw
    mode = avg - shift
    out = {
        "AVG": avg,
        "ENTROPY": -(np.log((s_lo + s_hi) * np.sqrt(np.pi / 2)) + 0.5 - np.log(ENTROPY_GRID)),
        "FLAG": flag.astype(np.float64),
        "MEDIAN": _split_normal_quantile(0.5, mode, s_lo, s_hi),
        "MODE": np.round(mode / MODE_STEP) * MODE_STEP,
        "P16": _split_normal_quantile(0.15865525, mode, s_lo, s_hi),
        "P2P5": _split_normal_quantile(0.025, mode, s_lo, s_hi),
        "P84": _split_normal_quantile(0.84134475, mode, s_lo, s_hi),
        "P97P5": _split_normal_quantile(0.975, mode, s_lo, s_hi),
    }
    f1 = flag == 1
    for k in out:
        if k == "FLAG":
            continue
        out[k] = np.where(f1, 0.0 if k == "ENTROPY" else SENTINEL, out[k])
    return out
