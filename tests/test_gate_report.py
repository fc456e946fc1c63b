"""The report's arc_snr table: ours (seed definition) beside the seed's section 9, footprint apart."""

from pipeline.gate.report import _snr_table


def test_snr_table_shows_ours_beside_the_seeds_and_the_footprint_apart():
    prof = {"splits": {"train": {
        "arc_snr_p5": 0.11, "arc_snr_p25": 0.52, "arc_snr_p50": 1.3, "arc_snr_p75": 2.9, "arc_snr_p95": 9.7,
        "arc_snr_gt1_frac": 0.6, "arc_snr_gt10_frac": 0.04,
        "arc_snr_footprint_p5": 0.4, "arc_snr_footprint_p25": 1.7, "arc_snr_footprint_p50": 4.4,
        "arc_snr_footprint_p75": 9.9, "arc_snr_footprint_p95": 33.0,
        "arc_snr_footprint_gt1_frac": 0.9, "arc_snr_footprint_gt10_frac": 0.25}}}
    page = _snr_table(prof)
    ours = page.split("train: arc_snr (seed definition)</td>")[1].split("</tr>")[0]
    assert "<td>1.3</td>" in ours and "<td>60</td>" in ours and "<td>4</td>" in ours
    seed = page.split("train: seed section 9</td>")[1].split("</tr>")[0]
    assert "<td>4.26</td>" in seed and "<td>89.2</td>" in seed
    fp = page.split("train: arc_snr_footprint (not the seed&#x27;s quantity)</td>")[1].split("</tr>")[0]
    assert "<td>4.4</td>" in fp and "<td>90</td>" in fp
