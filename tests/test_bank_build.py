"""Building the bank from the real GalSim-format files in data/hst_galaxies, and its failure modes."""

import logging
import shutil

import h5py
import numpy as np
import pytest
from astropy.io import fits

from pipeline.bank.measure import clean_galaxy
from pipeline.bank.build import build_bank, overlap_matrix, recentre
from pipeline.bank.galsim_catalog import read_catalog
from pipeline.bank.store import CATALOG_COLUMNS, open_bank
from pipeline.errors import InputError
from pipeline.units import HST_COUNTS_PER_S_TO_NMGY

AEGIS = "aegis_f814w/AEGIS_F814w_catalog.fits"
COSMOS = "cosmos_23.5_subset/real_galaxy_catalog_23.5.fits"
REAL_IDENTS = {"23409", "14886", "9024", "17038", "24216", "97475", "169753"}


@pytest.fixture
def aegis_copy(hst_dir, tmp_path):
    """A writable copy of the AEGIS sample to break in various ways."""
    dest = tmp_path / "aegis"
    shutil.copytree(hst_dir / "aegis_f814w", dest)
    for p in dest.iterdir():
        p.chmod(0o644)
    return dest


def _set_catalog_column(path, column, row, value):
    with fits.open(path, mode="update") as hdul:
        hdul[1].data[column][row] = value


def test_counts_per_second_to_nanomaggies_is_0p0421():
    by_hand = 10 ** ((22.5 - 25.94) / 2.5)
    assert by_hand == pytest.approx(0.042073, abs=1e-6)
    assert HST_COUNTS_PER_S_TO_NMGY == pytest.approx(by_hand, rel=1e-12)
    assert round(HST_COUNTS_PER_S_TO_NMGY, 4) == 0.0421


def test_bank_flux_is_sky_subtracted_stamp_sum_times_0p0421(hst_dir, tmp_path):
    # A bank stamp bigger than every source stamp keeps all of the galaxy's pixels: its flux must
    # equal the raw FITS stamp minus NOISE_MEAN, summed over the galaxy's clean mask, times the
    # factor (raw pixels read straight with astropy; the mask does not depend on the units).
    # The units are the point here, so the bank is built without the denoising (which changes the
    # pixels inside the mask: tests/test_bank_denoise.py).
    report = build_bank([hst_dir / AEGIS], tmp_path / "b.h5", stamp_size_pix=200, hlr_min_arcsec=0.0, hlr_max_arcsec=5.0,
                        denoise=False)
    cat = fits.getdata(hst_dir / AEGIS, 1)
    for k in report.kept:
        row = int(k.origin.split(" row ")[1].split()[0])
        raw = fits.getdata(hst_dir / "aegis_f814w" / cat["GAL_FILENAME"][row].strip(), int(cat["GAL_HDU"][row])).astype(float)
        _, mask = clean_galaxy(raw - cat["NOISE_MEAN"][row])
        expected = (raw - cat["NOISE_MEAN"][row])[mask].sum() * 0.0420727
        assert k.flux_nmgy == pytest.approx(expected, rel=1e-5)


def test_native_magnitude_reproduced_from_the_bank_stamp(hst_dir, tmp_path):
    """Each real galaxy's magnitude from its clean bank stamp against the catalogue's own F814W MAG
    (an independent measurement on the same HST data). COSMOS (MAG = SExtractor mag_auto):
    within 0.1 mag (measured -0.03, -0.05: a Kron aperture and a grown isophote do not enclose
    exactly the same light). AEGIS: within 0.25 mag (measured -0.01 to +0.21; its MAG is brighter
    than even the whole raw stamp's sum, so it counts light beyond the stamp). The denoising
    (pipeline.bank.denoise) moves these by -0.007 to +0.027 mag against the noisy clean stamp
    (the two COSMOS galaxies by <= 0.001): the bound was 0.2 before it (measured 0.00 to +0.18)."""
    report = build_bank([hst_dir / AEGIS, hst_dir / COSMOS], tmp_path / "m.h5")
    bank_path = tmp_path / "m.h5"
    import h5py

    with h5py.File(bank_path) as fh:
        cat_mag = fh["catalog"]["mag_f814w_catalog"][...]
        flux = fh["catalog"]["flux_nmgy"][...]
    diffs = {}
    for k, m_cat, f in zip(report.kept, cat_mag, flux):
        assert 22.5 - 2.5 * np.log10(f) == pytest.approx(k.mag_f814w, abs=1e-9)
        diffs[k.origin] = k.mag_f814w - m_cat
    print("bank mag - catalogue MAG:", {o.split()[0] + o.split(" row ")[1][:2]: round(d, 3) for o, d in diffs.items()})
    assert len(diffs) == 7
    for origin, d in diffs.items():
        assert abs(d) < (0.25 if origin.startswith("AEGIS") else 0.1), (origin, d)


def test_all_seven_real_galaxies_enter_the_bank(hst_dir, tmp_path):
    report = build_bank([hst_dir / AEGIS, hst_dir / COSMOS], tmp_path / "real.h5")
    assert {k.ident for k in report.kept} == REAL_IDENTS, report.lines()
    assert report.left_out == []
    bank = open_bank(tmp_path / "real.h5")
    assert bank.n == 7 and bank.images.shape == (7, 96, 96)
    assert np.all((bank.hlr_arcsec >= 0.1) & (bank.hlr_arcsec <= 1.0))
    # Centred: the brightest galaxy's light peaks near the stamp centre.
    peak = np.unravel_index(np.argmax(bank.image(int(np.argmax(bank.flux_nmgy)))), (96, 96))
    assert abs(peak[0] - 47.5) < 4 and abs(peak[1] - 47.5) < 4


def test_measured_hlr_agrees_with_catalogue_sersic_hlr(hst_dir, tmp_path):
    # hlr[:,0] is a PSF-deconvolved, circularised Sersic fit; the bank measures circular
    # apertures on the PSF-convolved stamp. Measured +7.8% and +13.5% on the two COSMOS galaxies:
    # 20% is the honest tolerance. flux_radius (pixels) would be 33x off.
    report = build_bank([hst_dir / COSMOS], tmp_path / "c.h5")
    with_cat = [k for k in report.kept if np.isfinite(k.hlr_arcsec_catalog)]
    assert len(with_cat) == 2
    for k in with_cat:
        assert k.hlr_arcsec == pytest.approx(k.hlr_arcsec_catalog, rel=0.20)
    fits_tab = fits.getdata(hst_dir / "cosmos_23.5_subset/real_galaxy_catalog_23.5_fits.fits", 1)
    by_ident = {str(i): h[0] for i, h in zip(fits_tab["IDENT"], fits_tab["hlr"])}
    assert {k.ident: k.hlr_arcsec_catalog for k in with_cat} == pytest.approx(by_ident)


def test_gal_hdu_defect_is_repaired_with_a_warning(hst_dir, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="pipeline.bank.galsim_catalog"):
        # without the denoising: the flux below is checked against the raw pixels
        report = build_bank([hst_dir / COSMOS], tmp_path / "c.h5", stamp_size_pix=200, denoise=False)
    first = next(k for k in report.kept if k.ident == "97475")
    assert first.origin.endswith("row 0 HDU 1") and "repaired 2 -> 1" in first.note
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "real_galaxy_catalog_23.5.fits row 0" in messages and "test_galaxy_images_23.5.fits" in messages
    assert "HDU 1" in messages
    # The two galaxies now have different images, each matching its own stamp_flux.
    cat = fits.getdata(hst_dir / COSMOS, 1)
    fluxes = {k.ident: k.flux_nmgy for k in report.kept}
    for ident, stamp_flux, noise_mean, hdu in zip(cat["IDENT"], cat["stamp_flux"], cat["NOISE_MEAN"], (1, 2)):
        raw = fits.getdata(hst_dir / "cosmos_23.5_subset/test_galaxy_images_23.5.fits", hdu).astype(float)
        assert raw.sum() == pytest.approx(stamp_flux, rel=1e-6)
        sky_subtracted = raw - noise_mean
        _, mask = clean_galaxy(sky_subtracted)
        assert fluxes[str(ident)] == pytest.approx(sky_subtracted[mask].sum() * HST_COUNTS_PER_S_TO_NMGY, rel=1e-5)


def test_gal_hdu_defect_with_strict_is_an_error_naming_the_row(hst_dir, tmp_path):
    with pytest.raises(InputError) as err:
        build_bank([hst_dir / COSMOS], tmp_path / "c.h5", strict=True)
    assert "real_galaxy_catalog_23.5.fits row 0" in str(err.value)
    assert not (tmp_path / "c.h5").exists()


def test_flux_mismatch_without_a_matching_hdu_is_rejected(aegis_copy, tmp_path):
    cat = aegis_copy / "AEGIS_F814w_catalog.fits"
    _set_catalog_column(cat, "stamp_flux", 2, 10.0)  # stamp sums to 2.708
    report = build_bank([cat], tmp_path / "b.h5", hlr_min_arcsec=0.0, hlr_max_arcsec=5.0)
    (lo,) = report.left_out
    assert lo.ident == "9024"
    assert "row 2" in lo.reason and "HDU 2" in lo.reason and "flux mismatch" in lo.reason


def test_nan_pixels_reject_the_row_naming_it(aegis_copy, tmp_path):
    images = aegis_copy / "AEGIS_F814w_images_01.fits"
    with fits.open(images, mode="update") as hdul:
        hdul[2].data[10, 10] = np.nan
    report = build_bank([aegis_copy / "AEGIS_F814w_catalog.fits"], tmp_path / "b.h5", hlr_min_arcsec=0.0, hlr_max_arcsec=5.0)
    (lo,) = report.left_out
    assert "AEGIS_F814w_catalog.fits row 2" in lo.reason and "HDU 2" in lo.reason and "NaN" in lo.reason
    assert len(report.kept) == 4


def test_row_pointing_past_the_last_hdu(aegis_copy, tmp_path):
    cat = aegis_copy / "AEGIS_F814w_catalog.fits"
    _set_catalog_column(cat, "GAL_HDU", 3, 7)
    _set_catalog_column(cat, "stamp_flux", 3, 1e6)  # and no other HDU can stand in for it
    report = build_bank([cat], tmp_path / "b.h5", hlr_min_arcsec=0.0, hlr_max_arcsec=5.0)
    (lo,) = report.left_out
    assert "row 3" in lo.reason and "GAL_HDU 7 is past the last HDU (1)" in lo.reason
    # strict also refuses the two AEGIS rows kept on a loose stamp_flux match; make them exact
    # so the first strict failure is row 3's.
    for row, (name, hdu) in {1: ("AEGIS_F814w_images_01.fits", 1), 4: ("AEGIS_F814w_images_02.fits", 1)}.items():
        _set_catalog_column(cat, "stamp_flux", row, float(fits.getdata(aegis_copy / name, hdu).astype(float).sum()))
    with pytest.raises(InputError, match="row 3 .*past the last HDU"):
        build_bank([cat], tmp_path / "s.h5", hlr_min_arcsec=0.0, hlr_max_arcsec=5.0, strict=True)


def test_hdu_that_is_not_an_image(aegis_copy, tmp_path):
    images = aegis_copy / "AEGIS_F814w_images_02.fits"
    with fits.open(images) as hdul:
        primary = fits.PrimaryHDU(hdul[0].data)
    table = fits.BinTableHDU.from_columns([fits.Column("x", "D", array=[1.0])])
    fits.HDUList([primary, table]).writeto(images, overwrite=True)
    report = build_bank([aegis_copy / "AEGIS_F814w_catalog.fits"], tmp_path / "b.h5", hlr_min_arcsec=0.0, hlr_max_arcsec=5.0)
    (lo,) = report.left_out
    assert "row 4" in lo.reason and "HDU 1 is a BinTableHDU" in lo.reason


def test_missing_image_file_is_an_input_error_naming_it(aegis_copy, tmp_path):
    (aegis_copy / "AEGIS_F814w_images_02.fits").unlink()
    with pytest.raises(InputError) as err:
        build_bank([aegis_copy / "AEGIS_F814w_catalog.fits"], tmp_path / "b.h5")
    assert err.value.source.endswith("AEGIS_F814w_images_02.fits") and "does not exist" in err.value.problem


def test_catalogue_without_images_is_an_input_error(hst_dir, tmp_path):
    with pytest.raises(InputError, match="real_galaxy_images.fits"):
        build_bank([hst_dir / "cosmos_23.5_example_catalog/real_galaxy_catalog_23.5_example.fits"], tmp_path / "b.h5")


def test_file_level_problems_name_the_file(aegis_copy, tmp_path):
    with pytest.raises(InputError, match="no such"):
        build_bank([tmp_path / "absent.fits"], tmp_path / "b.h5")
    not_fits = tmp_path / "cat.fits"
    not_fits.write_text("IDENT,GAL_FILENAME\n1,a.fits\n")
    with pytest.raises(InputError) as err:
        build_bank([not_fits], tmp_path / "b.h5")
    assert err.value.source == str(not_fits) and "FITS" in err.value.problem
    cat = aegis_copy / "AEGIS_F814w_catalog.fits"
    with fits.open(cat) as hdul:
        cols = [c for c in hdul[1].columns if c.name != "NOISE_MEAN"]
        fits.BinTableHDU.from_columns(cols).writeto(tmp_path / "no_noise.fits")
    with pytest.raises(InputError, match=r"missing required column\(s\) \['NOISE_MEAN'\]"):
        read_catalog(tmp_path / "no_noise.fits")


def test_hlr_filter_reasons_and_empty_bank(hst_dir, tmp_path):
    report = build_bank([hst_dir / AEGIS], tmp_path / "b.h5", hlr_min_arcsec=0.2, hlr_max_arcsec=1.0)
    left = {lo.ident: lo.reason for lo in report.left_out}
    assert set(left) == {"23409", "9024", "17038"}
    assert all("outside the filter [0.2, 1]" in r and "measured hlr 0.1" in r for r in left.values())
    with pytest.raises(InputError, match="no galaxy survived"):
        build_bank([hst_dir / AEGIS], tmp_path / "empty.h5", hlr_min_arcsec=2.0, hlr_max_arcsec=3.0)
    assert not (tmp_path / "empty.h5").exists()


def test_hdf5_attributes_and_units(hst_dir, tmp_path):
    build_bank([hst_dir / AEGIS, hst_dir / COSMOS], tmp_path / "real.h5")
    with h5py.File(tmp_path / "real.h5", "r") as fh:
        assert fh.attrs["format_version"] == 1
        assert fh.attrs["pixel_scale_arcsec"] == pytest.approx(0.03)
        assert "nanomaggies" in fh.attrs["image_units"]
        assert fh.attrs["zero_point_ab"] == pytest.approx(22.5)
        assert list(fh.attrs["hlr_filter_arcsec"]) == [0.1, 1.0]
        assert list(fh.attrs["stamp_shape"]) == [96, 96]
        for name, (_, unit, _) in CATALOG_COLUMNS.items():
            assert fh["catalog"][name].attrs["unit"] == unit
            assert fh["catalog"][name].shape == (7,)
        mags = fh["catalog/mag_f814w"][...]
        flux = fh["catalog/flux_nmgy"][...]
        assert mags == pytest.approx(22.5 - 2.5 * np.log10(flux))


def test_open_bank_rejects_wrong_files(tmp_path):
    text = tmp_path / "bank.h5"
    text.write_text("not hdf5")
    with pytest.raises(InputError, match="not an HDF5"):
        open_bank(text)
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as fh:
        fh.create_dataset("images", data=np.zeros((1, 4, 4), np.float32))
    with pytest.raises(InputError, match="missing attribute"):
        open_bank(bare)


def test_resampling_conserves_flux_and_centres():
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (40, 50))
    out = recentre(img, (24.5, 19.5), 0.03, 0.05, 64)  # the whole input fits inside
    assert out.sum() == pytest.approx(img.sum(), rel=1e-12)
    w = overlap_matrix(10, 4, -0.5, 2.5)
    assert w.sum(axis=0) == pytest.approx(np.ones(10))
    # A point source resampled lands at the centre of the output.
    point = np.zeros((31, 31))
    point[12, 17] = 1.0
    out = recentre(point, (17.0, 12.0), 0.03, 0.06, 20)
    yy, xx = np.indices(out.shape)
    assert (out * xx).sum() == pytest.approx(9.5) and (out * yy).sum() == pytest.approx(9.5)
