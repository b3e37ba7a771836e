"""``ingest_sdss_fits``: a HiSS-Cube from SDSS spectra, frames and the MPA-JHU catalogues.

The path from the SDSS archive to a study. Every input spectrum ends up in a report table,
kept or skipped with a reason; nothing an input can contain makes the ingest crash halfway.
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import Bunch

from ..utils._io import write_csv_atomic
from ._layout import BAND_NAMES, CUTOUT_SIZES, IMAGE_UNIT_PER_NMGY, SPECTRUM_REDSHIFT_KEY

EDGE_POLICIES = ("pad", "skip")
_KEYS = ["PLATEID", "MJD", "FIBERID"]

#: Report columns that describe the ingest, not the spectrum (kept out of the cube's headers).
_REPORT_ONLY = (
    "file", "object", "cube_row", "n_spectra", "status", "reason", "edge_padded",
    "padded_fraction", "_index",
)  # fmt: skip

#: Columns of the report table, in order.
REPORT_COLUMNS = (
    "file", "PLATEID", "MJD", "FIBERID", "PLUG_RA", "PLUG_DEC", SPECTRUM_REDSHIFT_KEY, "CLASS",
    "object", "cube_row", "n_spectra", "status", "reason", "edge_padded", "padded_fraction",
    "AVG", "FLAG",
)  # fmt: skip


def _expand(inputs, pattern, what):
    """Files named by paths, directories (searched recursively for ``pattern``) or globs."""
    if inputs is None:
        return []
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    found = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            hits = sorted(p for p in path.rglob(pattern) if p.is_file())
            if not hits:
                raise FileNotFoundError(f"{what}: no {pattern} file under {path}")
        elif glob.has_magic(text):
            hits = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
            if not hits:
                raise FileNotFoundError(f"{what}: the pattern {text} matches no file")
        elif path.is_file():
            hits = [path]
        else:
            raise FileNotFoundError(f"{what}: {path} does not exist")
        found.extend(hits)
    # The same file named twice (a folder and a glob) is read once.
    seen, unique = set(), []
    for p in found:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def _progress(items, desc, verbose):
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", disable=not verbose, file=sys.stderr)


def _atomic_csv(table, path):
    """Write a CSV under a temporary name in the same folder, then rename it."""
    write_csv_atomic(table, path, index=False)


def _read_spectra(paths, mask_bits, classes, verbose):
    """Read and resample every spectrum; a row per file, arrays for the readable ones."""
    from ._sdss_spectra import SpectrumHeaderError, read_sdss_spectrum, spectrum_on_grid

    rows, flux, sigma = [], [], []
    first_of_key = {}
    for path in _progress(paths, "spectra", verbose):
        row = {"file": str(path), "status": "kept", "reason": ""}
        try:
            header, wl, f, ivar, and_mask = read_sdss_spectrum(path)
            row.update(header)
            f_grid, s_grid = spectrum_on_grid(wl, f, ivar, and_mask, mask_bits)
        except SpectrumHeaderError as exc:  # it cannot be placed or matched: skip it
            row.update(exc.values)  # what could be read, for the report
            row.update(status="skipped", reason=f"unusable header: {exc.reason}")
            rows.append(row)
            continue
        except Exception as exc:  # any unreadable file is reported, never fatal
            row.update(status="skipped", reason=f"unreadable spectrum: {exc}")
            rows.append(row)
            continue
        key = tuple(row[k] for k in _KEYS)
        if key in first_of_key:
            # A second copy (another name or folder) would be stacked twice and labelled twice.
            row.update(
                status="skipped",
                reason=f"same PLATEID, MJD, FIBERID as {Path(first_of_key[key]).name}",
            )
        elif classes is not None and str(row.get("CLASS", "")).strip() not in classes:
            row.update(status="skipped", reason=f"class {row.get('CLASS')!r} not in {classes}")
        elif not np.isfinite(f_grid).any():
            row.update(status="skipped", reason="no unmasked pixel on the HiSS-Cube grid")
        else:
            first_of_key[key] = row["file"]
            row["_index"] = len(flux)
            flux.append(f_grid)
            sigma.append(s_grid)
        rows.append(row)
    return pd.DataFrame(rows), flux, sigma


def _read_frame_infos(paths, verbose):
    from ._sdss_frames import read_frame_info

    infos, problems = [], []
    for path in _progress(paths, "frame headers", verbose):
        try:
            infos.append(read_frame_info(path))
        except Exception as exc:
            problems.append(f"{path}: unreadable frame header: {exc}")
    return infos, problems


def _best_frame_per_band(overlap, bands, allowed):
    """Per object and band, the allowed frame holding most of the cutout and that fraction."""
    n = overlap.shape[0]
    choice = np.full((n, len(BAND_NAMES)), -1, dtype=np.int64)
    best = np.zeros((n, len(BAND_NAMES)))
    for k in np.flatnonzero(allowed):
        b = bands[k]
        better = overlap[:, k] > best[:, b]
        choice[better, b] = k
        best[better, b] = overlap[better, k]
    return choice, best


def _assign_frames(infos, ra, dec, edge):
    """For each object and band, the frame to cut from, or why there is none.

    The frames are grouped by field (run, camcol, field): the five frames of a field were
    taken within minutes of each other, so an object is cut from one field when a field
    covers it as well in all five bands as the best frames of each band do (mixing runs would
    mix epochs, seeing and sky within one object's image). Otherwise each band takes its own
    best frame. Either way, per band the frame holding the largest part of the
    64-pixel cutout wins (a whole cutout when any frame has one).
    """
    from ._sdss_frames import cutout_overlap

    size = CUTOUT_SIZES[0]
    n = len(ra)
    overlap = np.zeros((n, len(infos)))
    for k, info in enumerate(infos):
        overlap[:, k] = cutout_overlap(info, ra, dec, size)
    bands = np.array([BAND_NAMES.index(info.band) for info in infos], dtype=np.int64)
    choice, best = _best_frame_per_band(overlap, bands, np.ones(len(infos), dtype=bool))
    mixed = best.min(axis=1)  # the worst band's coverage with the best frame of every band
    one_field = np.zeros(n, dtype=bool)
    fields = [info.field_key for info in infos]
    for key in dict.fromkeys(fields):  # first-seen order: ties go to the first field
        allowed = np.array([f == key for f in fields])
        c_f, b_f = _best_frame_per_band(overlap, bands, allowed)
        score = b_f.min(axis=1)
        take = ~one_field & (score > 0) & (score >= mixed)
        choice[take], best[take], one_field[take] = c_f[take], b_f[take], True
    reasons = [""] * n
    for i in range(n):
        missing = [BAND_NAMES[b] for b in range(len(BAND_NAMES)) if choice[i, b] < 0]
        partial = [b for b in range(len(BAND_NAMES)) if choice[i, b] >= 0 and best[i, b] < 1]
        if missing:
            reasons[i] = f"no frame covers it in band(s) {', '.join(missing)}"
        elif partial and edge == "skip":
            b = partial[0]
            reasons[i] = (
                f"cutout runs off the edge of {infos[choice[i, b]].path.name} "
                f"({best[i, b]:.0%} on the frame; edge='skip')"
            )
    # Only meaningful where every band has a frame: NaN otherwise.
    padded_fraction = np.where((choice >= 0).all(axis=1), (1 - best).max(axis=1), np.nan)
    return choice, padded_fraction, reasons


def _cut_objects(infos, choice, usable, ra, dec, verbose):
    """Cutouts (nanomaggies) of the usable objects, opening one frame at a time."""
    from ._sdss_frames import cut_out, read_frame

    size = CUTOUT_SIZES[0]
    n = len(ra)
    images = np.full((n, len(BAND_NAMES), size, size), np.nan, dtype=np.float32)
    errors = np.full_like(images, np.nan)
    failed = {}
    needed = sorted({int(k) for k in choice[usable].ravel()})
    for k in _progress(needed, "frames", verbose):
        info = infos[k]
        b = BAND_NAMES.index(info.band)
        objects = np.flatnonzero(usable & (choice[:, b] == k))
        try:
            image, error = read_frame(info)
        except Exception as exc:
            for i in objects:
                failed[int(i)] = f"unreadable frame {info.path.name}: {exc}"
            continue
        for i in objects:
            images[i, b], errors[i, b] = cut_out(image, error, info.wcs, ra[i], dec[i], size)
        del image, error  # one frame in memory at a time
    return images, errors, failed


def _label_columns(frame):
    """AVG and FLAG as the reader sees them: MPA's -99 sentinel is a missing label."""
    avg = pd.to_numeric(frame["AVG"], errors="coerce")
    return avg.where(avg > -99), pd.to_numeric(frame["FLAG"], errors="coerce")


def format_ingest_summary(table):
    """A few lines describing what became of the inputs (printed by the CLI).

    Examples
    --------
    >>> import pandas as pd
    >>> from sklearn_sfr.datasets._ingest import format_ingest_summary
    >>> t = pd.DataFrame({"status": ["kept", "kept", "skipped"], "object": [0, 0, 1],
    ...                   "reason": ["", "", "no frame covers it in band(s) g"],
    ...                   "edge_padded": [False, False, False]})
    >>> print(format_ingest_summary(t))
    3 spectra: 2 kept as 1 object, 1 skipped
      skipped (1): no frame covers it in band(s) g
    """
    kept = table[table["status"] == "kept"]
    skipped = table[table["status"] != "kept"]
    n_obj = kept["object"].nunique()
    lines = [
        f"{len(table)} spectra: {len(kept)} kept as {n_obj} object{'s' * (n_obj != 1)}, "
        f"{len(skipped)} skipped"
    ]
    padded = kept.loc[kept["edge_padded"].astype(bool), "object"].nunique()
    if padded:
        lines.append(f"  {padded} kept object(s) have cutouts padded with NaN off a frame edge")
    for reason, count in skipped["reason"].value_counts(sort=True).items():
        lines.append(f"  skipped ({count}): {reason}")
    return "\n".join(lines)


def _given(value):
    """The paths (files, folders) a user gave for an input, globs left out."""
    if value is None:
        return []
    values = [value] if isinstance(value, str | os.PathLike) else list(value)
    return [v for v in values if not any(c in str(v) for c in "*?[")]


def _is_our_report(path):
    """An ingest report CSV this library wrote: its header is ours."""
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = fh.readline().strip().split(",")
    except OSError:
        return False
    return header[: len(REPORT_COLUMNS)] == list(REPORT_COLUMNS)


def _check_outputs(out, table_path, overwrite, inputs):
    """Before any FITS file is read: the cube and its report may be written, replace only
    what this library wrote, and touch no input (utils._outputs)."""
    from ..utils._outputs import check_output_file
    from ._writer import is_sklearn_sfr_cube

    check_output_file(
        out, overwrite=overwrite, is_ours=is_sklearn_sfr_cube, inputs=inputs, kind="cube"
    )
    # The report of a run that left no cube (it failed: the report says why) is replaced by
    # the next try without --overwrite; it is still only replaced if it is ours.
    failed_before = not os.path.lexists(out) and _is_our_report(table_path)
    check_output_file(
        table_path, overwrite=overwrite or failed_before, is_ours=_is_our_report,
        inputs=inputs, kind="ingest report",
    )  # fmt: skip


def ingest_sdss_fits(
    out,
    spectra,
    frames=None,
    mpa_info=None,
    mpa_sfr=None,
    *,
    edge="pad",
    match_radius=1.5,
    mask_bits=-1,
    classes=None,
    labels=None,
    overwrite=False,
    verbose=False,
):
    """Build a HiSS-Cube from SDSS spectra, frames and MPA-JHU catalogue files.

    Spectra are resampled flux-conservingly onto the HiSS-Cube grid (4620 pixels, 3839.7 to
    8914.6 A), repeat observations of one object are stacked by inverse-variance weighting,
    64 x 64 cutouts in the five bands are cut from the frames at each object's position (all
    four zooms derived as the writer derives them) and the MPA-JHU labels are matched on
    ``PLATEID, MJD, FIBERID``. A report table says what became of every input spectrum; it is
    saved as ``<out stem>_ingest.csv`` next to the cube.

    Parameters
    ----------
    out : str or path-like
        The cube to write (written under a temporary name and renamed at the end).
    spectra : str, path-like or sequence of them
        ``spec-PLATE-MJD-FIBER.fits`` files (DR8+ format): file paths, folders (searched
        recursively for ``spec-*.fits*``) or glob patterns.
    frames : str, path-like, sequence of them or None, default=None
        Calibrated ``frame-[ugriz]-RUN-CAMCOL-FIELD.fits(.bz2)`` files, folders or globs.
        None writes a spectrum-only cube (``load_hisscube(out, modalities=("spectrum",))``).
        With frames, an object needs a frame in each of the five bands, or it is skipped.
    mpa_info, mpa_sfr : str or path-like, default=None
        MPA-JHU ``gal_info`` and ``gal_totsfr`` (or ``gal_fibsfr``) FITS files, joined row by
        row (the catalogue's definition; an SFR file with its own ``PLATEID, MJD, FIBERID`` is
        joined on those), then matched to the spectra on ``PLATEID, MJD, FIBERID``.
        Spectra without a catalogue row are kept without a label (NaN), as are MPA's ``-99``
        sentinels; ``FLAG`` is kept.
    edge : {"pad", "skip"}, default="pad"
        An object whose cutout runs off the frame edge: ``"pad"`` keeps the partial cutout
        padded with NaN and flags it (``edge_padded``, ``padded_fraction``), ``"skip"`` skips
        it with the reason.
    match_radius : float, default=1.5
        Spectra closer than this many arcsec are repeat observations of one object.
    mask_bits : int, default=-1
        ``and_mask`` bits that mask a spectral pixel (-1: any bit); ``ivar == 0`` always masks.
    classes : sequence of str, default=None
        Keep only spectra of these pipeline classes (``"GALAXY"``, ``"QSO"``, ``"STAR"``); None
        keeps all. MPA-JHU has no SFR for quasars, so they get no label either way.
    labels : str or path-like, default=None
        Instead of ``mpa_info``/``mpa_sfr``: one table in any format astropy reads (FITS, CSV,
        ECSV, VOTable, ...), such as a CasJobs query result, with the identifiers (``PLATEID``
        or ``plate``, ``MJD``, ``FIBERID``; any case) and the SFR columns named as in the DR7
        file (``AVG``, ``FLAG``, ``P16``, ``P84``, ``MEDIAN``, ...) or as in ``galSpecExtra``
        (``sfr_tot_p16``, ``sfr_tot_p50`` = ``MEDIAN``, ...). ``AVG`` and ``FLAG`` are required.
        Rows are matched to the spectra on the identifiers, never by position. A value that is
        text or infinite is an error naming the table, column and row; an empty cell is a
        missing label, and ``-99``/``-9999`` are MPA's "no estimate".
    overwrite : bool, default=False
        Replace an existing cube and report.
    verbose : bool, default=False
        Progress bars over the files (stderr) and the summary printed at the end.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``path`` (the cube), ``table`` (DataFrame, one row per input spectrum: its file, keys,
        position, redshift, class, ``object`` (repeat group), ``cube_row`` (-1 if skipped),
        ``status`` (``"kept"``/``"skipped"``), ``reason``, ``edge_padded``,
        ``padded_fraction``, label ``AVG``/``FLAG``), ``table_path`` (the CSV),
        ``frame_problems`` (frames that could not be read) and ``summary`` (text).

    Raises
    ------
    ValueError
        No object could be kept (the report is still written; the message summarises it), a
        parameter is invalid, or the label table cannot be used (a column it cannot map, a
        value that is not a finite number, rows of one object that disagree).
    FileNotFoundError, FileExistsError
        An input names nothing; ``out`` exists and ``overwrite`` is False.

    See Also
    --------
    load_hisscube : Load the written cube for scikit-learn.

    Examples
    --------
    >>> from sklearn_sfr.datasets import ingest_sdss_fits
    >>> result = ingest_sdss_fits("cube.h5", spectra="spectra/")  # doctest: +SKIP
    >>> print(result.summary)  # doctest: +SKIP
    11 spectra: 11 kept as 5 objects, 0 skipped
    """
    from ._sdss_spectra import group_by_position
    from ._writer import write_hisscube

    if edge not in EDGE_POLICIES:
        raise ValueError(f"edge must be one of {EDGE_POLICIES}, got {edge!r}")
    if (mpa_info is None) != (mpa_sfr is None):
        raise ValueError("pass both mpa_info (gal_info) and mpa_sfr (gal_totsfr/gal_fibsfr)")
    if labels is not None and mpa_info is not None:
        raise ValueError("pass either labels (one table) or mpa_info and mpa_sfr, not both")
    if not float(match_radius) > 0:
        raise ValueError(f"match_radius must be a positive number of arcsec, got {match_radius}")
    if classes is not None:
        classes = tuple(str(c).strip() for c in classes)
    out = Path(out)
    table_path = out.with_name(f"{out.stem}_ingest.csv")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"{out.parent} is not a folder")
    spectrum_paths = _expand(spectra, "spec-*.fits*", "spectra")
    if not spectrum_paths:
        raise FileNotFoundError("spectra: no spectrum file given")
    frame_paths = _expand(frames, "frame-*.fits*", "frames")
    if frames is not None and not frame_paths:
        raise FileNotFoundError("frames: no frame file given")
    for name, value in (("mpa_info", mpa_info), ("mpa_sfr", mpa_sfr), ("labels", labels)):
        if value is not None and not Path(value).is_file():
            raise FileNotFoundError(f"{name}: {value} does not exist")
    _check_outputs(out, table_path, overwrite, [
        *_given(spectra), *_given(frames), *spectrum_paths, *frame_paths, mpa_info, mpa_sfr,
        labels,
    ])  # fmt: skip
    # The label source is read and its columns mapped before any spectrum is read: a table
    # the ingest cannot use fails at once.
    from ._mpa_jhu import open_labels

    catalogue = open_labels(labels, mpa_info, mpa_sfr)

    report, flux, sigma = _read_spectra(spectrum_paths, mask_bits, classes, verbose)
    for col in REPORT_COLUMNS:
        if col not in report:
            report[col] = np.nan
    report["object"] = -1
    report["cube_row"] = -1
    report["edge_padded"] = False
    report["padded_fraction"] = np.nan
    ok = report["status"] == "kept"
    report.loc[ok, "object"] = group_by_position(
        report.loc[ok, "PLUG_RA"], report.loc[ok, "PLUG_DEC"], match_radius
    )

    if catalogue is not None:
        # Matched on the identifiers; values checked (text, infinities) on the rows used.
        keys = report.loc[ok, _KEYS].astype(np.int64)
        mpa = catalogue.select(keys)
        report = report.drop(columns=["AVG", "FLAG"]).merge(
            mpa.assign(**{k: mpa[k].astype(float) for k in _KEYS}), how="left", on=_KEYS
        )

    # Objects: the first spectrum (earliest MJD) gives the position the cutouts are cut at.
    objects = (
        report[report["status"] == "kept"].sort_values(["object", "MJD"]).groupby("object").head(1)
    )
    ra = objects["PLUG_RA"].to_numpy(np.float64)
    dec = objects["PLUG_DEC"].to_numpy(np.float64)
    object_ids = objects["object"].to_numpy()
    usable = np.ones(len(objects), dtype=bool)
    reasons = [""] * len(objects)
    padded_fraction = np.full(len(objects), np.nan)
    frame_problems = []
    images = errors = None
    if frames is not None:
        infos, frame_problems = _read_frame_infos(frame_paths, verbose)
        choice, padded_fraction, reasons = _assign_frames(infos, ra, dec, edge)
        usable = np.array([not r for r in reasons], dtype=bool)
        images, errors, failed = _cut_objects(infos, choice, usable, ra, dec, verbose)
        for i, reason in failed.items():
            usable[i], reasons[i] = False, reason
        # The cube stores images in the reference's units (layout doc section 7).
        scale = np.array([IMAGE_UNIT_PER_NMGY[b] for b in BAND_NAMES], dtype=np.float32)
        images *= scale[None, :, None, None]
        errors *= scale[None, :, None, None]

    by_object = pd.Series(np.arange(len(objects)), index=object_ids)
    pos = by_object.reindex(report["object"]).to_numpy()
    has_obj = report["object"].to_numpy() >= 0
    for i in np.flatnonzero(has_obj):
        j = int(pos[i])
        if not usable[j]:
            report.loc[i, ["status", "reason"]] = ["skipped", reasons[j]]
        report.loc[i, "padded_fraction"] = float(padded_fraction[j])
        report.loc[i, "edge_padded"] = bool(padded_fraction[j] > 0 and usable[j])

    kept_objects = np.flatnonzero(usable)
    cube_row = pd.Series(np.arange(kept_objects.size), index=object_ids[kept_objects])
    kept = (report["status"] == "kept").to_numpy()
    report.loc[kept, "cube_row"] = cube_row.reindex(report.loc[kept, "object"]).to_numpy()
    counts = report[kept].groupby("object").size()
    report["n_spectra"] = report["object"].map(counts).fillna(0).astype(np.int64)

    if kept_objects.size:
        spec = report[kept].sort_values(["cube_row", "MJD"])
        # Headers and MPA columns as read (MPA's sentinels included, as the reference keeps
        # them); the report's bookkeeping columns stay out of the cube.
        table = spec.drop(columns=[c for c in _REPORT_ONLY if c in spec]).reset_index(drop=True)
        table[_KEYS] = table[_KEYS].astype(np.int64)
        idx = spec["_index"].astype(np.int64).to_numpy()
        write_hisscube(
            out,
            images=None if images is None else images[kept_objects],
            image_errors=None if errors is None else errors[kept_objects],
            spectra=np.stack([flux[k] for k in idx]).astype(np.float32),
            spectrum_errors=np.stack([sigma[k] for k in idx]).astype(np.float32),
            spectrum_table=table,
            target_table=None
            if images is None
            else pd.DataFrame(
                {
                    "edge_padded": padded_fraction[kept_objects] > 0,
                    "padded_fraction": padded_fraction[kept_objects],
                }
            ),
            spectrum_target=spec["cube_row"].astype(np.int64).to_numpy(),
            attrs={"ingested_from": "SDSS FITS", "ingest_edge": edge},
            overwrite=overwrite,
            sfr_source=catalogue.sfr_source if catalogue is not None else "none",
        )
    report["AVG"], report["FLAG"] = _label_columns(report)
    report = report[list(REPORT_COLUMNS)]
    _atomic_csv(report, table_path)
    summary = format_ingest_summary(report)
    if frame_problems:
        summary += "\n" + "\n".join(f"  frame problem: {p}" for p in frame_problems)
    if verbose:
        print(summary)
    if not kept_objects.size:
        # The first line is what the command line shows: an unreadable frame is the likely
        # cause, and the report's rows only say that no frame covers their object.
        unread = (
            f" ({len(frame_problems)} frame file(s) could not be read, first {frame_problems[0]})"
            if frame_problems
            else ""
        )
        raise ValueError(f"no object could be kept{unread}; {table_path} lists why\n{summary}")
    return Bunch(
        path=out,
        table=report,
        table_path=table_path,
        frame_problems=frame_problems,
        summary=summary,
    )
