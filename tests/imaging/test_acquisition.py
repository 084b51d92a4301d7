"""Contrast and MR sequence from the DICOM header (pydicom's bundled MR_small / CT_small, and edited copies)."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file

from kgclip.imaging.acquisition import (acquisition_from_dataset, contrast_from_dataset, mr_sequence_from_dataset,
                                        weighting_from_tr_te)
from kgclip.imaging.dicom import read_dicom_header


def _ds(name: str) -> pydicom.Dataset:
    return pydicom.dcmread(get_testdata_file(name), stop_before_pixels=True)


def test_bundled_files():
    mr = acquisition_from_dataset(_ds("MR_small.dcm"))  # SE, TR 4000 ms, TE 240 ms, empty ContrastBolusAgent
    assert (mr["mr_sequence"], mr["mr_weighting"], mr["mr_sequence_from"]) == ("T2", "T2", "TR/TE")
    assert mr["contrast"] is None  # Type 2 attribute present but empty: unknown, not "without"
    assert (mr["repetition_time"], mr["echo_time"]) == (4000.0, 240.0)
    ct = acquisition_from_dataset(_ds("CT_small.dcm"))  # ISOVUE300/100, route IV
    assert (ct["contrast"], ct["contrast_route"], ct["contrast_from"]) == ("with", "iv", "ContrastBolusAgent")
    assert ct["mr_sequence"] is None


def test_header_carries_derived_values_not_free_text(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm"))
    ds.SeriesDescription = "AX T1 POST GAD Dr Smith"
    ds.RepetitionTime, ds.EchoTime = 500, 12
    path = tmp_path / "mr.dcm"
    ds.save_as(path)
    header = read_dicom_header(path)
    assert header["mr_sequence"] == "T1" and header["contrast"] == "with"
    assert not any("Smith" in str(v) for v in header.values())


def test_tr_te_rule_and_fallbacks():
    assert weighting_from_tr_te(500, 15) == "T1"
    assert weighting_from_tr_te(4000, 100) == "T2"
    assert weighting_from_tr_te(3000, 20) == "PD"
    assert weighting_from_tr_te(1200, 50) is None  # between the bands: no guess
    assert weighting_from_tr_te(None, 20) is None
    ds = _ds("MR_small.dcm")
    del ds.RepetitionTime
    del ds.EchoTime
    assert mr_sequence_from_dataset(ds) == {"mr_sequence": None, "mr_weighting": None, "mr_sequence_from": None}


@pytest.mark.parametrize("ti, expected", [(150, "STIR"), (2200, "FLAIR"), (900, None)])
def test_inversion_recovery_by_ti(ti, expected):
    ds = _ds("MR_small.dcm")
    ds.ScanningSequence, ds.InversionTime, ds.RepetitionTime, ds.EchoTime = "IR", ti, 9000, 120
    got = mr_sequence_from_dataset(ds)["mr_sequence"]
    # TI 900 ms (T1-weighted IR): no sequence name; TR/TE 9000/120 then gives T2 by the weighting rule.
    assert got == (expected or "T2")


def test_gradient_echo_and_adc_give_no_sequence():
    ds = _ds("MR_small.dcm")
    ds.ScanningSequence = "GR"
    assert mr_sequence_from_dataset(ds)["mr_sequence"] is None
    ds = _ds("MR_small.dcm")
    ds.SeriesDescription = "ADC map"
    assert mr_sequence_from_dataset(ds)["mr_sequence"] is None
    ds.SeriesDescription = "DWI b1000 TRACE"
    assert mr_sequence_from_dataset(ds)["mr_sequence"] == "DWI"
    ds.SeriesDescription = "AX T2 FLAIR"
    assert mr_sequence_from_dataset(ds)["mr_sequence"] == "FLAIR"
    ct = _ds("CT_small.dcm")
    ct.ScanningSequence = "SE"
    assert mr_sequence_from_dataset(ct)["mr_sequence"] is None  # not an MR


def test_contrast_edits():
    ds = _ds("CT_small.dcm")
    del ds.ContrastBolusAgent
    del ds.ContrastBolusRoute
    assert contrast_from_dataset(ds)["contrast"] is None  # missing tag: unknown, the caller falls back
    ds.ContrastBolusAgent = "NONE"
    assert contrast_from_dataset(ds)["contrast"] == "without"
    ds.ContrastBolusAgent = "Omnipaque + oral Gastrografin"
    ds.ContrastBolusRoute = "IV"
    assert contrast_from_dataset(ds)["contrast_route"] == "oral+iv"
    del ds.ContrastBolusAgent
    del ds.ContrastBolusRoute
    ds.SeriesDescription = "CT ABD W/O"
    assert contrast_from_dataset(ds)["contrast"] == "without"
    ds.SeriesDescription = "CT ABD C+"
    assert contrast_from_dataset(ds)["contrast"] == "with"
