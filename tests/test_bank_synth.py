"""Synthetic clumpy galaxies in GalSim format: synth -> real reader -> bank -> open_bank."""

import hashlib

import numpy as np
import pytest
from astropy.io import fits

from pipeline.bank.build import build_bank
from pipeline.bank.galsim_catalog import read_catalog
from pipeline.bank.store import open_bank
from pipeline.bank.synth import synth_galsim_catalog
from dhs_cli.main import main
from pipeline.units import HST_F814W_ZEROPOINT_AB

N = 16


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    synth_galsim_catalog(out, N, seed=3)
    return out


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_follow_the_galsim_layout(synth_dir):
    cat = fits.getdata(synth_dir / "synthetic_galaxy_catalog.fits", 1)
    for col in ("IDENT", "MAG", "GAL_FILENAME", "GAL_HDU", "PIXEL_SCALE", "NOISE_MEAN", "NOISE_VARIANCE", "stamp_flux"):
        assert col in cat.columns.names
    assert len(cat) == N
    assert np.all((cat["MAG"] >= 20) & (cat["MAG"] <= 24))
    with fits.open(synth_dir / cat["GAL_FILENAME"][0].strip()) as hdul:
        assert len(hdul) == N  # one galaxy per HDU, from HDU 0
        for row in range(N):
            stamp = hdul[int(cat["GAL_HDU"][row])].data.astype(float)
            assert stamp.sum() == pytest.approx(cat["stamp_flux"][row], rel=1e-9)
            # The pedestal-subtracted stamp holds (most of) the galaxy's catalogue flux.
            model_counts = 10 ** ((HST_F814W_ZEROPOINT_AB - cat["MAG"][row]) / 2.5)
            noise_sd = np.sqrt(stamp.size * cat["NOISE_VARIANCE"][row] * 16 / 6) * 6  # generous, correlated
            assert (stamp - cat["NOISE_MEAN"][row]).sum() == pytest.approx(model_counts, abs=0.1 * model_counts + noise_sd)
    fit = fits.getdata(synth_dir / "synthetic_galaxy_catalog_fits.fits", 1)
    # hlr in arcsec, flux_radius in 0.03" pixels: the real files' unit trap, reproduced.
    assert fit["flux_radius"] == pytest.approx(fit["hlr"][:, 0] / 0.03)
    assert fit["hlr"][:, 0].min() > 0.1 and fit["hlr"][:, 0].max() < 1.0


def test_reader_takes_arcsec_hlr_not_flux_radius(synth_dir):
    rows = read_catalog(synth_dir / "synthetic_galaxy_catalog.fits")
    fit = fits.getdata(synth_dir / "synthetic_galaxy_catalog_fits.fits", 1)
    assert [r.hlr_arcsec_catalog for r in rows] == pytest.approx(list(fit["hlr"][:, 0]))


def test_deterministic_from_seed(synth_dir, tmp_path):
    again = tmp_path / "again"
    synth_galsim_catalog(again, N, seed=3)
    for name in ("synthetic_galaxy_catalog.fits", "synthetic_galaxy_catalog_fits.fits", "synthetic_galaxy_images_n1.fits"):
        assert _sha(again / name) == _sha(synth_dir / name)
    other = tmp_path / "other"
    synth_galsim_catalog(other, 2, seed=4)
    assert _sha(other / "synthetic_galaxy_images_n1.fits") != _sha(synth_dir / "synthetic_galaxy_images_n1.fits")


def test_round_trip_measured_hlr_matches_synthesis_truth(synth_dir, tmp_path):
    # Truth: hlr of the noise-free model about its centroid (synth.py). Over 299 galaxies the
    # measured/true ratio has median -0.4%, 68% within 3%, 90% within 14% (faint, large ones
    # scatter: the total flux in a big aperture is noisy). On these 16: median 1.7%, worst 14%.
    report = build_bank([synth_dir / "synthetic_galaxy_catalog.fits"], tmp_path / "bank.h5", hlr_min_arcsec=0.0, hlr_max_arcsec=5.0)
    assert len(report.kept) == N and report.left_out == []
    bank = open_bank(tmp_path / "bank.h5")
    assert bank.n == N and bank.images.shape == (N, 96, 96)
    assert bank.pixel_scale_arcsec == pytest.approx(0.03)
    truth = np.array([k.hlr_arcsec_catalog for k in report.kept])
    rel = np.abs(bank.hlr_arcsec / truth - 1)
    assert np.median(rel) < 0.05
    assert np.percentile(rel, 75) < 0.10
    assert rel.max() < 0.30
    bright = np.array([k.mag_f814w < 22 for k in report.kept])
    assert bright.sum() >= 4 and np.median(rel[bright]) < 0.03
    assert list(bank.ident) == [str(900000 + i) for i in range(N)]


def test_cli_synth_with_real_and_info(tmp_path, hst_dir, capsys):
    out = tmp_path / "bank"
    assert main(["bank", "synth", "--out", str(out), "--n", "4", "--seed", "2", "--include-real", str(hst_dir)]) == 0
    printed = capsys.readouterr().out
    assert "kept" in printed and "97475" in printed and "repaired 2 -> 1" in printed
    bank = open_bank(out / "cosmos_bank.h5")
    assert 4 + 7 - printed.count("left out ") == bank.n
    assert main(["bank", "info", str(out / "cosmos_bank.h5")]) == 0
    info = capsys.readouterr().out
    assert f"galaxies      {bank.n}" in info and bank.checksum in info and "0.03 arcsec/pixel" in info
    assert main(["bank", "info", str(tmp_path / "nope.h5")]) == 2
    assert "no such COSMOS bank file" in capsys.readouterr().err
