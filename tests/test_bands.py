"""One band table (issue 18): the contract is unchanged by deriving it from pipeline.bands, and
adding a band is one table entry.

* `test_arrow_schema_is_unchanged`: pipeline.contract.arrow_schema() against a literal copy of the
  field list (name, type, unit, doc) taken before the contract was derived from the table.
* `test_a_fourth_band_runs_a_tiny_pipeline`: in a fresh interpreter, the table gets an i band
  (made-up but plausible values, between r and z) before any other pipeline module is imported;
  then synthetic brick -> coadd files written and read back -> LRG table -> manifest -> inject_task
  for a few tasks -> rows with the 4-band contract columns, checked by the gate's own per-row
  pixel agreement (pipeline.gate.pixel_agreement.row_disagreements, which follows the contract's
  band list) and written as Arrow with the 4-band schema. Nothing but the table entry is changed.
"""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline import bands
from pipeline.contract import arrow_schema

REPO = Path(__file__).resolve().parents[1]
_STAMP = pa.list_(pa.float32(), 12288)

#: arrow_schema() before issue 18 (name, type, unit, doc), in order.
FIELDS = [
    ('task_id', 'string', '', 'unique task id from the manifest'),
    ('run_id', 'string', '', 'id of the Phase 4c run that produced the row'),
    ('variant', 'string', '', 'dataset variant, e.g. v5_cosmos_production'),
    ('experiment_id', 'string', '', 'experiment id, e.g. train_stamp64_bandsgrz_cosmos'),
    ('pipeline_version', 'string', '', 'version of this package that rendered the row'),
    ('task_seed', 'int64', '', 'per-task seed frozen in the manifest'),
    ('region_split', 'string', '', 'train / val / test; partition key'),
    ('region_id', 'int64', '', 'sky region the LRG belongs to; a region lives in one split'),
    ('brickname', 'string', '', 'DR10 brick holding the LRG'),
    ('lrg_id', 'int64', '', 'LRG id from the Phase 3 table'),
    ('ra', 'double', 'deg', 'LRG right ascension (ICRS)'),
    ('dec', 'double', 'deg', 'LRG declination (ICRS)'),
    ('lens_mag_r', 'double', 'AB mag', 'LRG r-band magnitude'),
    ('psfsize_g', 'double', 'arcsec FWHM', 'survey PSF FWHM in g at the stamp centre'),
    ('psfsize_r', 'double', 'arcsec FWHM', 'survey PSF FWHM in r at the stamp centre'),
    ('psfsize_z', 'double', 'arcsec FWHM', 'survey PSF FWHM in z at the stamp centre'),
    ('psfdepth_r', 'double', 'AB mag', 'r-band 5-sigma point-source depth at the LRG'),
    ('is_control', 'bool', '', 'true: the cutout with no injection'),
    ('lens_model', 'string', '', 'SIE for injections, CONTROL for controls'),
    ('theta_e_arcsec', 'double', 'arcsec', 'SIE Einstein radius'),
    ('lens_e1', 'double', '', 'SIE ellipticity component e1 (lenstronomy convention)'),
    ('lens_e2', 'double', '', 'SIE ellipticity component e2'),
    ('shear_gamma1', 'double', '', 'external shear gamma1'),
    ('shear_gamma2', 'double', '', 'external shear gamma2'),
    ('lens_x_arcsec', 'double', 'arcsec', 'lens centre offset from stamp centre along +x'),
    ('lens_y_arcsec', 'double', 'arcsec', 'lens centre offset from stamp centre along +y'),
    ('cosmos_index', 'int64', '', 'row of the COSMOS bank used as the source'),
    ('cosmos_hlr_arcsec', 'double', 'arcsec', 'intrinsic (unlensed) half-light radius of the galaxy, measured on its whole catalogue stamp (the radius the bank\'s hlr filter means)'),
    ('cosmos_hlr_in_stamp_arcsec', 'double', 'arcsec', 'half-light radius of the light inside the bank stamp that was lensed (truncated); null for banks without it'),
    ('src_x_arcsec', 'double', 'arcsec', 'source-plane position relative to the lens centre, +x'),
    ('src_y_arcsec', 'double', 'arcsec', 'source-plane position relative to the lens centre, +y'),
    ('src_phi_rad', 'double', 'rad', 'source rotation angle'),
    ('src_dmag', 'double', 'mag', 'source r magnitude minus lens r magnitude (unlensed)'),
    ('src_mag_g', 'double', 'AB mag', 'unlensed source g magnitude'),
    ('src_mag_r', 'double', 'AB mag', 'unlensed source r magnitude'),
    ('src_mag_z', 'double', 'AB mag', 'unlensed source z magnitude'),
    ('src_mag_f814w', 'double', 'AB mag', "the galaxy's own F814W magnitude, from its clean bank stamp; null if unknown"),
    ('src_redshift', 'double', '', 'redshift the source colours were taken at (catalogue zphot clipped to the colour table, or drawn); null for the lens_relative model'),
    ('src_sed', 'string', '', 'colour template (Im, Scd; pipeline.bank.colours); null for the lens_relative model'),
    ('src_brightening_mag', 'double', 'mag', "how much brighter than the galaxy itself the source was made (physical model: the config's src_brightening_mag, 0 by default; lens_relative: F814W - r)"),
    ('psf_fwhm_g', 'double', 'arcsec', 'Moffat FWHM used for g'),
    ('psf_fwhm_r', 'double', 'arcsec', 'Moffat FWHM used for r'),
    ('psf_fwhm_z', 'double', 'arcsec', 'Moffat FWHM used for z'),
    ('moffat_beta', 'double', '', 'Moffat beta used'),
    ('magnification', 'double', '', 'lensed / unlensed source flux, noiseless, before PSF'),
    ('arc_flux_g', 'double', 'nmgy', 'arc flux inside the stamp, g'),
    ('arc_flux_r', 'double', 'nmgy', 'arc flux inside the stamp, r'),
    ('arc_flux_z', 'double', 'nmgy', 'arc flux inside the stamp, z'),
    ('arc_snr', 'double', '', "r-band arc SNR, the seed's definition (section 6.1): sum over every good pixel of the stamp"),
    ('arc_snr_footprint', 'double', '', "r-band arc SNR over the good pixels of the arc's footprint (arc >= 10% of its peak)"),
    ('arc_snr_peak', 'double', '', 'max per-pixel r-band arc SNR over unmasked pixels'),
    ('arc_masked_frac', 'double', '', 'fraction of r-band arc flux on masked pixels'),
    ('cutout_ok', 'bool', '', 'false: the task could not be rendered; see cutout_error'),
    ('cutout_error', 'string', '', 'reason the task failed; null when cutout_ok'),
    ('bad_pixel_frac', 'double', '', 'fraction of stamp pixels with invvar <= 0 or bad maskbits'),
    ('image', 'fixed_size_list<item: float>[12288]', 'nmgy/pixel', 'LRG cutout plus arc, [band, y, x]; on the 2^-14 nmgy grid (pipeline.pixels)'),
    ('invvar', 'fixed_size_list<item: float>[12288]', '1/nmgy^2', 'inverse variance, [band, y, x]; 10 significant bits (pipeline.pixels)'),
    ('arc', 'fixed_size_list<item: float>[12288]', 'nmgy/pixel', 'the injected arc alone (PSF-convolved), [band, y, x]; quantized as pipeline.pixels says'),
    ('maskbits', 'fixed_size_list<item: int32>[4096]', 'bits', 'DR10 maskbits, [y, x]'),
]


def test_arrow_schema_is_unchanged():
    schema = arrow_schema()
    now = [(f.name, str(f.type), f.metadata[b"unit"].decode(), f.metadata[b"doc"].decode()) for f in schema]
    assert now == FIELDS
    assert all(f.nullable for f in schema)
    assert arrow_schema(include_pixels=False).names == [f[0] for f in FIELDS[:-4]]


def test_table_is_the_survey_bands_in_contract_order():
    assert bands.BANDS == ("g", "r", "z") and bands.REFERENCE_BAND == "r"
    assert bands.band_columns("psfsize_{b}") == ("psfsize_g", "psfsize_r", "psfsize_z")
    m = bands.band_magnitudes(20.0, 0.5, 0.3)
    assert m == {"g": 20.0 + 0.5, "r": 20.0, "z": 20.0 - 0.3}


# The fourth band (made-up but plausible: DECam i, between r and z; its mask bit is invented for
# the test: bit 14, the one bit left that the int16 maskbits files can hold, for both SATUR and
# ALLMASK), placed between r and z so that the stamp order follows the table, not an append.
_FOURTH_BAND_SCRIPT = r'''
import json, sys, tempfile
from pipeline import bands
g, r, z = bands.build_band_table()
i = bands.Band("i", satur_bit=1 << 14, allmask_bit=1 << 14, colour_gr=0.0, colour_rz=-0.45,
               synth_fwhm_range_arcsec=(0.85, 1.65), synth_depth_offset_mag=-0.5, synth_depth_scatter_mag=0.08,
               gallery_channel=None, gallery_weight=1.2)
bands.use_band_table((g, r, i, z))

import numpy as np
import pyarrow as pa
import pytest
from pipeline.config import RunConfig
from pipeline.contract import BANDS, COLUMN_NAMES, arrow_schema
from pipeline.gallery import grz_composite
from pipeline.gate.pixel_agreement import row_disagreements
from pipeline.injection.task import RunContext, inject_task
from pipeline.manifest import build_manifest, MANIFEST_COLUMNS
from pipeline.survey.coadds import load_brick, write_brick
from pipeline.survey.lrg_table import validate_lrg_table
from pipeline.survey.maskbits import BAD_MASKBITS
from pipeline.survey.synth import SynthParams, brick_centers, make_brick
from tests.injection_fixtures import make_bank

out = {"bands": list(BANDS), "bad_maskbits_has_i": bool(BAD_MASKBITS & (1 << 14))}
params = SynthParams(seed=5, n_bricks=1, brick_size_pix=200, lrgs_per_brick=16, edge_frac=0.0)
sb = make_brick(params, 0, brick_centers(params)[0])
with tempfile.TemporaryDirectory() as d:
    written = write_brick(d, sb.coadds)
    out["files"] = sorted(u.rsplit("/", 1)[-1] for u in written)
    brick = load_brick(d, sb.coadds.brickname)
out["brick_bands"] = list(brick.bands)
lrg = validate_lrg_table(sb.lrgs, "synth")
out["lrg_i_columns"] = sorted(c for c in lrg.columns if c.endswith("_i"))
cfg = RunConfig(control_frac={"train": 0.3, "val": 0.3, "test": 0.3})
bank = make_bank(n=3)
man = build_manifest(lrg, cfg, 3, bank.hlr_arcsec)
out["manifest_i_columns"] = [c for c in MANIFEST_COLUMNS if c.endswith("_i")]
ctx = RunContext("four-band", "test", cfg)
tasks = [man[man.is_control].iloc[0]] + [t for _, t in man[~man.is_control].iloc[:4].iterrows()]
rows = [inject_task(t.to_dict(), brick, bank, ctx) for t in tasks]
out["ok"] = [bool(x["cutout_ok"]) for x in rows]
out["errors"] = [x["cutout_error"] for x in rows if not x["cutout_ok"]]
out["keys_are_contract"] = all(list(x) == list(COLUMN_NAMES) for x in rows)
out["disagreements"] = [row_disagreements(x, BANDS) for x in rows]
inj = [x for x in rows if x["cutout_ok"] and not x["is_control"]]
out["arc_len"] = [int(np.asarray(x["arc"]).size) for x in inj]
out["row_i"] = {k: [x[k] for x in inj] for k in ("psfsize_i", "psf_fwhm_i", "src_mag_i", "arc_flux_i")}
out["src_i_between_r_z"] = all(x["src_mag_r"] >= x["src_mag_i"] >= x["src_mag_z"] for x in inj)
arcs = [np.asarray(x["arc"], float).reshape(4, 64, 64) for x in inj]
out["arc_i_flux_matches"] = all(abs(a[2].sum() - x["arc_flux_i"]) <= 1e-6 * abs(x["arc_flux_i"]) for a, x in zip(arcs, inj))
table = pa.Table.from_pylist(rows, schema=arrow_schema())
out["schema_names"] = table.schema.names
out["stamp_type"] = str(table.schema.field("image").type)
out["composite_shape"] = list(grz_composite(np.asarray(inj[0]["image"]).reshape(4, 64, 64), BANDS).shape)
print("RESULT " + json.dumps(out))
'''


def test_a_fourth_band_runs_a_tiny_pipeline():
    proc = subprocess.run([sys.executable, "-c", _FOURTH_BAND_SCRIPT], cwd=REPO, capture_output=True, text=True,
                          timeout=900)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["bands"] == ["g", "r", "i", "z"] and out["brick_bands"] == ["g", "r", "i", "z"]
    assert out["bad_maskbits_has_i"]
    for kind in ("image", "invvar", "psfsize"):
        assert any(f.endswith(f"-{kind}-i.fits.fz") for f in out["files"]), out["files"]
    assert {"psfsize_i", "mag_i", "psfdepth_i"} <= set(out["lrg_i_columns"])
    assert out["manifest_i_columns"] == ["psfsize_i", "src_mag_i"]
    assert all(out["ok"]) and not out["errors"], out["errors"]
    assert out["keys_are_contract"]
    assert out["disagreements"] == [[]] * len(out["ok"])  # the gate's per-row pixel agreement, 4 bands
    assert out["arc_len"] == [4 * 64 * 64] * 4
    for values in out["row_i"].values():
        assert len(values) == 4 and all(v is not None and v > 0 for v in values), out["row_i"]
    assert out["src_i_between_r_z"] and out["arc_i_flux_matches"]
    names = out["schema_names"]
    for stem in ("psfsize_", "src_mag_", "psf_fwhm_", "arc_flux_"):  # per-band columns in table order
        assert [n for n in names if n.startswith(stem) and len(n) == len(stem) + 1] == \
            [stem + b for b in "griz"]
    assert out["stamp_type"] == "fixed_size_list<item: float>[16384]"
    assert out["composite_shape"] == [64, 64, 3]


_FOURTH_BAND_GATE_SCRIPT = r"""
import json
from pipeline import bands
g, r, z = bands.build_band_table()
i = bands.Band("i", satur_bit=1 << 14, allmask_bit=1 << 14, colour_gr=0.0, colour_rz=-0.45,
               synth_fwhm_range_arcsec=(0.85, 1.65), synth_depth_offset_mag=-0.6, synth_depth_scatter_mag=0.08,
               gallery_channel=None, gallery_weight=0.0, psfsize_hist_range_arcsec=(0.5, 3.2))
bands.use_band_table((g, r, i, z))
from pipeline.contract import PARITY_COLUMNS
from pipeline.gate import histograms, shortcut_probe
from pipeline.gate.thresholds import load_thresholds
suites = {s: [c.metric for c in load_thresholds(s).checks if c.metric.startswith("parity_psfsize_")]
          for s in ("demo", "production", "strict")}
print(json.dumps({"parity": PARITY_COLUMNS, "hist": histograms.HISTOGRAMS["psfsize_i"][1:3],
                  "groups": [g for _, g in histograms.HIST_GROUPS if "psfsize_i" in g],
                  "probe": "psfsize_i" in shortcut_probe.SCALAR_FEATURES, "suites": suites}))
"""


def test_a_fourth_band_gets_the_gates_histogram_parity_checks_and_probe_feature():
    """The gate's per-band parts follow the band table: the parity columns, the PSF-size histogram
    (with the band's own edges), the shortcut probe's features and every suite's parity check."""
    proc = subprocess.run([sys.executable, "-c", _FOURTH_BAND_GATE_SCRIPT], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["parity"] == ["psfsize_r", "psfsize_g", "psfsize_i", "psfsize_z", "psfdepth_r", "lens_mag_r"]
    assert got["hist"] == [0.5, 3.2] and len(got["groups"]) == 1 and got["probe"]
    for suite, metrics in got["suites"].items():
        assert metrics == [f"parity_psfsize_{b}_ks_ratio" for b in "rgiz"], suite


def test_per_band_suite_checks_expand_in_reference_band_order_and_need_the_placeholder(tmp_path):
    from pipeline.errors import InputError
    from pipeline.gate.thresholds import load_thresholds

    ok = tmp_path / "ok.yaml"
    ok.write_text('checks:\n  - {name: "p_{band}", metric: "parity_psfsize_{band}_ks_ratio", per_band: true, max: 1.0,'
                  ' why: "band {band}"}\n')
    checks = load_thresholds(str(ok)).checks
    assert [(c.name, c.metric, c.why) for c in checks] == [
        (f"p_{b}", f"parity_psfsize_{b}_ks_ratio", f"band {b}") for b in ("r", "g", "z")]
    bad = tmp_path / "bad.yaml"
    bad.write_text('checks:\n  - {name: "p", metric: "parity_psfsize_r_ks_ratio", per_band: true, max: 1.0}\n')
    with pytest.raises(InputError, match=r"checks\[0\].*per_band check needs \{band\}"):
        load_thresholds(str(bad))
