"""Attack catalogue, ingest labels (issues #17 and #22): a catalogue never mislabels a spectrum.

Labels are joined to the spectra on ``PLATEID, MJD, FIBERID``, never by row position when the
table has the identifiers; a value that is text or infinite is an error naming the table,
column and row; a spectrum whose header cannot place or identify it is skipped with its reason
in the report, and the ingest goes on. Every input is left as it was.
"""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from sklearn_sfr.cli import main
from sklearn_sfr.datasets import ingest_sdss_fits, load_hisscube
from sklearn_sfr.datasets._layout import MERGED_LABEL_KEY
from tests.conftest import file_state

DATA = Path(__file__).parents[2].parent / "shared" / "data" / "sdss"
if not (DATA / "spectra").is_dir():
    pytest.skip(f"the real SDSS test files are not at {DATA}", allow_module_level=True)

SPECTRA = DATA / "spectra"
CSV = DATA / "mpa_jhu_totsfr_rows.csv"
SFR = ["AVG", "ENTROPY", "FLAG", "MEDIAN", "MODE", "P16", "P2P5", "P84", "P97P5"]
KEYS = ["PLATEID", "MJD", "FIBERID"]
# The two labelled epochs of the 0411 galaxy and the BOSS galaxy (no MPA row): three files.
FILES = [
    SPECTRA / "spec-0411-51817-0119.fits",
    SPECTRA / "spec-0411-51873-0101.fits",
    SPECTRA / "spec-4500-55543-0331.fits",
]
# Unrelated catalogue rows, so that no join can be right by accident of position.
OTHERS = pd.DataFrame(
    [
        [266, 51602, 1, -0.5, -4.5, 0, -0.5, -0.5, -0.9, -1.2, -0.1, 0.2],
        [266, 51630, 1, 0.7, -4.2, 0, 0.7, 0.7, 0.4, 0.1, 1.0, 1.3],
    ],
    columns=KEYS + SFR,
)


@pytest.fixture(scope="module")
def rows():
    return pd.read_csv(CSV)


def _key(row):
    return (int(row["PLATEID"]), int(row["MJD"]), int(row["FIBERID"]))


def _expected(rows):
    return rows.set_index(KEYS)


def _check_labels(table, rows, atol=1e-5):
    """Every spectrum with a row has that row's AVG and FLAG; the others none."""
    expected = _expected(rows)
    for _, row in table.iterrows():
        if row["status"] != "kept":
            continue
        if _key(row) in expected.index:
            assert row["AVG"] == pytest.approx(expected.loc[_key(row), "AVG"], abs=atol)
            assert row["FLAG"] == expected.loc[_key(row), "FLAG"]
        else:
            assert math.isnan(row["AVG"]) and math.isnan(row["FLAG"])


def _write_pair(folder, rows, *, sfr_rows=None, sfr_keys=False, text_avg=None):
    """gal_info + gal_totsfr in the catalogue's FITS format (HDU1).

    ``sfr_rows`` are the SFR file's rows (default: gal_info's, row-aligned); ``sfr_keys`` gives
    the SFR file PLATEID/MJD/FIBERID columns of its own; ``text_avg`` (row -> text) makes AVG a
    text column.
    """
    sfr_rows = rows if sfr_rows is None else sfr_rows
    info = fits.BinTableHDU.from_columns(
        [fits.Column(k, "J", array=rows[k].to_numpy(np.int32)) for k in KEYS]
        + [fits.Column("Z", "E", array=np.full(len(rows), 0.03, np.float32))]
    )
    columns = []
    if sfr_keys:
        columns += [fits.Column(k, "J", array=sfr_rows[k].to_numpy(np.int32)) for k in KEYS]
    for c in SFR:
        values = sfr_rows[c].to_numpy(np.float32)
        if c == "AVG" and text_avg is not None:
            text = np.array([text_avg.get(i, f"{v:.5f}") for i, v in enumerate(values)])
            columns.append(fits.Column(c, "12A", array=text))
        else:
            columns.append(fits.Column(c, "E", array=values))
    sfr = fits.BinTableHDU.from_columns(columns)
    info_path, sfr_path = folder / "gal_info.fits", folder / "gal_totsfr.fits"
    fits.HDUList([fits.PrimaryHDU(), info]).writeto(info_path)
    fits.HDUList([fits.PrimaryHDU(), sfr]).writeto(sfr_path)
    return info_path, sfr_path


def _states(paths):
    return {Path(p): file_state(p) for p in paths}


# -- #17: joined on identifiers, never by position -------------------------------------------
def test_sfr_file_with_its_own_identifiers_is_joined_on_them(tmp_path, rows):
    # gal_info in one order, the SFR file (carrying the identifiers) in the reverse order: a
    # row-by-row join gives 0411-51817-0119 another object's SFR, silently.
    info_rows = pd.concat([OTHERS, rows], ignore_index=True)
    sfr_rows = info_rows.iloc[::-1]
    info, sfr = _write_pair(tmp_path, info_rows, sfr_rows=sfr_rows, sfr_keys=True)
    before = _states([info, sfr, *FILES])
    result = ingest_sdss_fits(tmp_path / "c.h5", FILES, mpa_info=info, mpa_sfr=sfr)
    assert _states([info, sfr, *FILES]) == before
    _check_labels(result.table, rows)
    assert result.table["AVG"].notna().sum() == 2
    merged = pd.read_hdf(result.path, MERGED_LABEL_KEY).set_index(KEYS)
    expected = _expected(rows)
    for key in [(411, 51817, 119), (411, 51873, 101)]:
        for c in ("P16", "P84", "MEDIAN"):
            assert merged.loc[key, c] == pytest.approx(expected.loc[key, c], abs=1e-5)


@pytest.mark.parametrize("fmt", ["csv", "ecsv", "votable", "fits"])
def test_label_table_in_any_order_and_format_is_joined_on_identifiers(tmp_path, rows, fmt):
    # SDSS CAS spellings of the identifiers, rows reversed and mixed with unrelated rows.
    shuffled = pd.concat([OTHERS, rows], ignore_index=True).iloc[::-1]
    table = Table.from_pandas(shuffled.rename(columns={"PLATEID": "plate", "FIBERID": "fiberID"}))
    table.rename_column("MJD", "mjd")
    path = tmp_path / {"csv": "t.csv", "ecsv": "t.ecsv", "votable": "t.vot", "fits": "t.fits"}[fmt]
    table.write(path, format={"csv": "ascii.csv", "ecsv": "ascii.ecsv"}.get(fmt, fmt))
    before = _states([path, *FILES])
    result = ingest_sdss_fits(tmp_path / "c.h5", FILES, labels=path)
    assert _states([path, *FILES]) == before
    _check_labels(result.table, rows)
    assert result.table["AVG"].notna().sum() == 2


#: The CasJobs ``galSpecExtra`` spelling of each DR7 SFR column, as a query that adds the mean
#: and the flag under that naming returns them (``sfr_tot_p50`` is the DR7 MEDIAN).
CASJOBS_SFR = {
    "AVG": "sfr_tot_avg", "ENTROPY": "sfr_tot_entropy", "FLAG": "sfr_tot_flag",
    "MEDIAN": "sfr_tot_p50", "MODE": "sfr_tot_mode", "P16": "sfr_tot_p16",
    "P2P5": "sfr_tot_p2p5", "P84": "sfr_tot_p84", "P97P5": "sfr_tot_p97p5",
}  # fmt: skip
CASJOBS_KEYS = {"PLATEID": "plate", "MJD": "mjd", "FIBERID": "fiberID"}


def _catalogue(rows, naming, fmt, folder, seed):
    """The catalogue rows, mixed with unrelated ones and randomly shuffled, in one naming
    (``"dr7"``: PLATEID/MJD/FIBERID and AVG/P16/P84/FLAG; ``"casjobs"``: plate/mjd/fiberID and
    sfr_tot_*) and one format."""
    table = pd.concat([OTHERS, rows], ignore_index=True)
    table = table.sample(frac=1, random_state=seed).reset_index(drop=True)
    if naming == "casjobs":
        table = table.rename(columns={**CASJOBS_KEYS, **CASJOBS_SFR})
    path = folder / f"{naming}-{seed}.{fmt}"
    if fmt == "csv":
        table.to_csv(path, index=False)
    else:
        Table.from_pandas(table).write(path, format="fits")
    return path


def _labels_of(result):
    """The cube's label table (every SFR column) and the report's AVG/FLAG, by identifiers."""
    merged = pd.read_hdf(result.path, MERGED_LABEL_KEY).set_index(KEYS)[SFR].sort_index()
    report = result.table.set_index(KEYS)[["AVG", "FLAG"]].sort_index()
    return merged, report


@pytest.mark.parametrize("naming", ["dr7", "casjobs"])
@pytest.mark.parametrize("fmt", ["csv", "fits"])
def test_both_namings_in_csv_and_fits_shuffled_give_the_same_labels(tmp_path, rows, naming, fmt):
    # The reference: the CSV as the SDSS files came (DR7 naming, catalogue order).
    expected = _labels_of(ingest_sdss_fits(tmp_path / "ref.h5", FILES, labels=CSV))
    assert expected[1]["AVG"].notna().sum() == 2
    for seed in (0, 1):  # two row orders: the join cannot depend on position
        path = _catalogue(rows, naming, fmt, tmp_path, seed)
        result = ingest_sdss_fits(tmp_path / f"{naming}-{seed}.h5", FILES, labels=path)
        merged, report = _labels_of(result)
        # The same values (a FITS table stores them as float64 as the CSV reads them).
        pd.testing.assert_frame_equal(merged, expected[0], check_dtype=False)
        pd.testing.assert_frame_equal(report, expected[1], check_dtype=False)


# -- #17: text and infinite SFR values --------------------------------------------------------
def test_text_sfr_value_in_the_fits_pair_is_an_error_naming_table_column_row(tmp_path, rows):
    # gal_totsfr with AVG stored as text: "high" on the row of 0411-51873-0101 (FITS row 2).
    info, sfr = _write_pair(tmp_path, rows, text_avg={1: "high"})
    before = _states([info, sfr, *FILES])
    with pytest.raises(ValueError) as err:
        ingest_sdss_fits(tmp_path / "c.h5", FILES, mpa_info=info, mpa_sfr=sfr)
    message = str(err.value)
    assert "gal_totsfr.fits" in message and "'AVG'" in message and "row 2" in message
    assert "'high' is not a finite number" in message
    assert "PLATEID 411, MJD 51873, FIBERID 101" in message
    assert _states([info, sfr, *FILES]) == before
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize("column", ["AVG", "P84"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_infinite_sfr_value_is_an_error(tmp_path, rows, column, value):
    bad = rows.copy()
    bad.loc[0, column] = value
    info, sfr = _write_pair(tmp_path, bad)
    with pytest.raises(ValueError, match=rf"gal_totsfr.fits: column '{column}', row 1 .*not a"):
        ingest_sdss_fits(tmp_path / "c.h5", FILES, mpa_info=info, mpa_sfr=sfr)
    assert not (tmp_path / "c.h5").exists()


@pytest.mark.parametrize(
    "cell, shown", [("high", "'high'"), ("inf", "inf"), ("-Infinity", "-inf")]
)
def test_text_or_infinite_value_in_a_csv_is_one_line_from_the_cli(
    tmp_path, rows, capsys, cell, shown
):
    text = CSV.read_text().splitlines()
    fields = text[2].split(",")  # data row 2: 411,51873,101
    fields[3] = cell
    text[2] = ",".join(fields)
    path = tmp_path / "labels.csv"
    path.write_text("\n".join(text) + "\n")
    before = _states([path, *FILES])
    out = tmp_path / "c.h5"
    args = ["ingest", str(out), "--spectra", *map(str, FILES), "--labels", str(path), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {path}: column 'AVG', row 2 (PLATEID 411, MJD 51873, FIBERID")
    assert f"{shown} is not a finite number" in err
    assert _states([path, *FILES]) == before
    assert not out.exists()


def test_sentinels_and_empty_cells_are_missing_labels(tmp_path, rows):
    # -99 (DR7 files) and -9999 (CAS galSpec tables) are MPA's "no estimate"; an empty cell is
    # a missing value. None of them is a label, and FLAG is kept.
    table = rows.copy()
    table.loc[0, ["AVG", "MEDIAN", "P16", "P84"]] = -9999.0
    table.loc[0, "FLAG"] = 1
    table.loc[1, "AVG"] = np.nan
    extra = pd.DataFrame([[4500, 55543, 331, -99, 0, 1, -99, -99, -99, -99, -99, -99]],
                         columns=rows.columns)  # fmt: skip
    path = tmp_path / "labels.csv"
    pd.concat([table, extra]).to_csv(path, index=False)
    result = ingest_sdss_fits(tmp_path / "c.h5", FILES, labels=path)
    by_key = result.table.set_index(result.table.apply(_key, axis=1))
    assert by_key["AVG"].isna().all()
    assert by_key.loc[[(411, 51817, 119)], "FLAG"].tolist() == [1]
    assert by_key.loc[[(411, 51873, 101)], "FLAG"].tolist() == [0]
    assert by_key.loc[[(4500, 55543, 331)], "FLAG"].tolist() == [1]
    data = load_hisscube(result.path, modalities=("spectrum",), flag=None)
    assert np.isnan(data.y).all()
    # The cube keeps the sentinels as they are in the table, as the reference does.
    merged = pd.read_hdf(result.path, MERGED_LABEL_KEY).set_index(KEYS)
    assert merged.loc[(411, 51817, 119), "AVG"] == -9999
    assert merged.loc[(4500, 55543, 331), "AVG"] == -99


def test_flag_that_is_not_a_whole_number_is_an_error(tmp_path, rows):
    table = rows.copy()
    table["FLAG"] = table["FLAG"].astype(float)
    table.loc[1, "FLAG"] = 0.5
    path = tmp_path / "labels.ecsv"
    Table.from_pandas(table).write(path)
    with pytest.raises(ValueError, match=r"column 'FLAG', row 2 .*0\.5 is not a non-negative"):
        ingest_sdss_fits(tmp_path / "c.h5", FILES, labels=path)


# -- #17: an unusable header skips that spectrum, not the ingest ------------------------------
@pytest.mark.parametrize(
    "key, value, reason",
    [
        ("PLUG_DEC", -500.0, "unusable header: PLUG_DEC = -500.0 is outside [-90, 90] deg"),
        ("PLUG_RA", 360.5, "unusable header: PLUG_RA = 360.5 is outside [0, 360) deg"),
        ("PLUG_RA", -1.0, "unusable header: PLUG_RA = -1.0 is outside [0, 360) deg"),
        ("FIBERID", 0, "unusable header: FIBERID = 0 is not a positive whole number"),
        # Truncated to 51817 it would take the catalogue row of another spectrum.
        ("MJD", 51817.5, "unusable header: MJD = 51817.5 is not a positive whole number"),
    ],
)
def test_unusable_header_skips_that_spectrum_with_its_reason(tmp_path, rows, key, value, reason):
    bad = tmp_path / "spec-0411-51817-0999.fits"
    with fits.open(SPECTRA / "spec-4500-55543-0331.fits") as hdul:
        hdul[0].header["PLATEID"], hdul[0].header["MJD"] = 411, 51817
        hdul[0].header["FIBERID"] = 119 if key == "MJD" else 999
        hdul[0].header[key] = value
        hdul.writeto(bad)
    info, sfr = _write_pair(tmp_path, rows)
    before = _states([bad, info, sfr, *FILES])
    result = ingest_sdss_fits(tmp_path / "c.h5", [*FILES, bad], mpa_info=info, mpa_sfr=sfr)
    assert _states([bad, info, sfr, *FILES]) == before
    report = pd.read_csv(result.table_path)
    row = report[report["file"] == str(bad)].iloc[0]
    assert row["status"] == "skipped" and row["reason"] == reason
    assert row[key] == value  # the report shows the value that was refused
    assert math.isnan(row["AVG"])
    assert (report.loc[report["file"] != str(bad), "status"] == "kept").all()
    _check_labels(result.table, rows)
    assert f"skipped (1): {reason}" in result.summary


# -- siblings ---------------------------------------------------------------------------------
def test_same_spectrum_twice_is_skipped_not_stacked_and_labelled_twice(tmp_path, rows):
    # A copy under another name (a second download, another folder): before, it was stacked
    # with itself and the writer failed on the repeated label at the end, without a report.
    copy = tmp_path / "spec-0411-51817-0119-copy.fits"
    copy.write_bytes(FILES[0].read_bytes())
    info, sfr = _write_pair(tmp_path, rows)
    result = ingest_sdss_fits(tmp_path / "c.h5", [*FILES, copy], mpa_info=info, mpa_sfr=sfr)
    row = result.table[result.table["file"] == str(copy)].iloc[0]
    assert row["status"] == "skipped"
    assert row["reason"] == "same PLATEID, MJD, FIBERID as spec-0411-51817-0119.fits"
    assert result.table_path.exists()
    data = load_hisscube(result.path, modalities=("spectrum",), flag=None)
    assert sorted(data.frame["n_spectra"]) == [1, 2]


def test_repeated_catalogue_rows_that_disagree_are_an_error(tmp_path, rows):
    # Before, the first of the two rows was used with a warning.
    twice = pd.concat([rows, rows.iloc[[0]].assign(AVG=0.5)], ignore_index=True)
    info, sfr = _write_pair(tmp_path, twice)
    message = r"gal_info.fits: rows 1, 5 are all PLATEID 411, MJD 51817, FIBERID 119 but their"
    with pytest.raises(ValueError, match=message + " values differ"):
        ingest_sdss_fits(tmp_path / "c.h5", FILES, mpa_info=info, mpa_sfr=sfr)
    # Rows that repeat the same values are one row.
    same = pd.concat([rows, rows.iloc[[0]]], ignore_index=True)
    path = tmp_path / "same.csv"
    same.to_csv(path, index=False)
    _check_labels(ingest_sdss_fits(tmp_path / "d.h5", FILES, labels=path).table, rows)


# -- #22: columns it cannot map ---------------------------------------------------------------
def test_galspecextra_without_mean_or_flag_is_refused_with_the_mapping(tmp_path, rows, capsys):
    # galSpecExtra has percentiles and the entropy but no mean (AVG) and no FLAG: taking its
    # median sfr_tot_p50 as AVG would change every label by up to 0.4 dex.
    galspec = pd.DataFrame(
        {
            "plate": rows["PLATEID"], "mjd": rows["MJD"], "fiberid": rows["FIBERID"],
            "sfr_tot_p2p5": rows["P2P5"], "sfr_tot_p16": rows["P16"],
            "sfr_tot_p50": rows["MEDIAN"], "sfr_tot_p84": rows["P84"],
            "sfr_tot_p97p5": rows["P97P5"], "sfr_tot_entropy": rows["ENTROPY"],
        }
    )  # fmt: skip
    path = tmp_path / "galspec.csv"
    galspec.to_csv(path, index=False)
    out = tmp_path / "c.h5"
    args = ["ingest", str(out), "--spectra", *map(str, FILES), "--labels", str(path), "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"error: {path}: cannot map the label column(s) AVG, FLAG; expected")
    assert "AVG <- AVG | sfr_tot_avg | sfr_tot_mean" in err
    assert "FLAG <- FLAG | sfr_tot_flag" in err
    assert "sfr_tot_p50 is the median" in err and "the table has: plate, mjd, fiberid" in err
    assert not out.exists()
    # With a mean and a flag under that naming, the table is used, sfr_tot_p50 as MEDIAN.
    galspec["sfr_tot_avg"], galspec["SFR_TOT_FLAG"] = rows["AVG"], rows["FLAG"]
    galspec.to_csv(path, index=False)
    result = ingest_sdss_fits(out, FILES, labels=path)
    _check_labels(result.table, rows)
    merged = pd.read_hdf(result.path, MERGED_LABEL_KEY).set_index(KEYS)
    assert merged.loc[(411, 51817, 119), "MEDIAN"] == pytest.approx(-0.947083)
    with pytest.raises(ValueError, match="columns PLATEID, plate would all be PLATEID"):
        ingest_sdss_fits(tmp_path / "e.h5", FILES, labels=_with_column(tmp_path, rows))


def _with_column(folder, rows):
    path = folder / "two_plates.csv"
    rows.assign(plate=rows["PLATEID"]).to_csv(path, index=False)
    return path


def test_missing_identifier_and_bad_identifier_are_named(tmp_path, rows):
    path = tmp_path / "noid.csv"
    rows.drop(columns=["FIBERID"]).to_csv(path, index=False)
    message = r"cannot map the label column\(s\) FIBERID; expected \(case-insensitive\) FIBERID"
    with pytest.raises(ValueError, match=message + " <- FIBERID"):
        ingest_sdss_fits(tmp_path / "c.h5", FILES, labels=path)
    text = CSV.read_text().replace("411,51873,101", "411,51873,abc")
    path.write_text(text)
    with pytest.raises(ValueError, match=r"column 'FIBERID', row 2: 'abc' is not an SDSS FIBERID"):
        ingest_sdss_fits(tmp_path / "c.h5", FILES, labels=path)
    with pytest.raises(ValueError, match="either labels"):
        ingest_sdss_fits(tmp_path / "c.h5", FILES, labels=CSV, mpa_info=CSV, mpa_sfr=CSV)
