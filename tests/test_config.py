"""Run config: every bad value stops the run before any output, with a message naming the key."""

import pytest

from dhs_cli.main import main
from pipeline.config import RunConfig, load_run_config, parse_bands
from pipeline.errors import InputError


def test_builtin_configs_load_and_match_the_seed():
    prod = load_run_config("production")
    assert (prod.variant, prod.experiment_id) == ("v5_cosmos_production", "train_stamp64_bandsgrz_cosmos")
    assert (prod.theta_e_min_arcsec, prod.theta_e_max_arcsec) == (0.5, 2.5)
    assert prod.moffat_beta == 3.5 and prod.control_frac["train"] == 0.5 and prod.bands == ("g", "r", "z")
    assert load_run_config("demo").variant == "demo"


@pytest.mark.parametrize(
    "yaml_text, key",
    [
        ("theta_e_min_arcsec: 2.6\ntheta_e_max_arcsec: 2.5\n", "theta_e_min_arcsec"),
        ("bands: [g, r, i]\n", "bands"),
        ("src_dmag_min: 5\nsrc_dmag_max: 4\n", "src_dmag_min"),
        ("control_frac: {train: 1.2, val: 0.5, test: 0.5}\n", "control_frac"),
        ("split_fractions: {train: 0.5, val: 0.2, test: 0.2}\n", "split_fractions"),
        ("moffat_beta: 1.0\n", "moffat_beta"),
        ("psf_model: gaussian\n", "psf_model"),
        ("thetaE_max: 3\n", "unknown key"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, yaml_text, key):
    path = tmp_path / "run.yaml"
    path.write_text(yaml_text)
    with pytest.raises(InputError) as err:
        load_run_config(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_missing_and_malformed_config_files(tmp_path):
    with pytest.raises(InputError, match="no such run config file"):
        load_run_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("theta_e_min_arcsec: [1\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_run_config(bad)


def test_bands_must_be_comma_separated():
    assert parse_bands("g,r,z") == ("g", "r", "z")
    # the seed lost a run to '--bands grz' being read as one band
    with pytest.raises(InputError, match="comma-separated"):
        parse_bands("grz")
    with pytest.raises(InputError, match="unknown band"):
        parse_bands("g,r,y")


def test_config_object_validates_itself():
    with pytest.raises(InputError, match="theta_e_min_arcsec"):
        RunConfig(theta_e_min_arcsec=3.0, theta_e_max_arcsec=2.5)


def test_cli_reports_bad_config_without_traceback(tmp_path, capsys):
    from tests.injection_fixtures import make_bank  # noqa: PLC0415
    from pipeline.bank.store import write_bank  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415
    from pipeline.survey.lrg_table import write_lrg_table  # noqa: PLC0415

    lrg = pd.DataFrame({"lrg_id": [1, 2], "brickname": ["1500p020"] * 2, "ra": [150.0, 150.01],
                        "dec": [2.0, 2.01], "mag_r": [19.0, 19.5], "mag_g": [20.6, 21.0], "mag_z": [18.1, 18.6],
                        "psfsize_g": [1.5] * 2, "psfsize_r": [1.3] * 2, "psfsize_z": [1.2] * 2,
                        "psfdepth_r": [24.0] * 2})
    write_lrg_table(lrg, str(tmp_path / "lrg.parquet"))
    bank = make_bank(2)
    write_bank(tmp_path / "b.h5", bank.images, {"ident": np.array(["a", "b"]), "flux_nmgy": bank.flux_nmgy,
               "hlr_arcsec": bank.hlr_arcsec}, pixel_scale_arcsec=bank.pixel_scale_arcsec,
               hlr_filter_arcsec=(0.1, 1.0), created_by="test")
    path = tmp_path / "run.yaml"
    path.write_text("theta_e_min_arcsec: 2.6\ntheta_e_max_arcsec: 2.5\n")
    code = main(["manifest", "--lrg", str(tmp_path / "lrg.parquet"), "--cosmos-bank-h5", str(tmp_path / "b.h5"),
                 "--run-config", str(path), "--out", str(tmp_path / "m")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"{path}: theta_e_min_arcsec: need 0 < min <= max, got 2.6 > 2.5" in err
    assert not (tmp_path / "m").exists()  # stopped before any output
