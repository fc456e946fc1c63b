"""The manifest: splits without leakage, unpaired controls at the configured fraction, frozen and
reproducible parameters, priors as configured, sources multiply imaged, clear input errors."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pipeline.config import SPLITS, RunConfig, load_run_config
from pipeline.errors import InputError
from pipeline.manifest import (
    CAUSTIC_RADIUS_FACTOR,
    MANIFEST_COLUMNS,
    build_manifest,
    hash_uniform,
    manifest_counts,
    read_manifest,
    region_ids,
    write_manifest,
)

BANK_SIZE = 40


def _bank_mags(n):
    """F814W magnitudes of an n-galaxy test bank (the physical source model needs them)."""
    return np.linspace(20.0, 24.5, n) if n > 0 else None


def build_manifest(lrg, config, bank_size, *args, **kwargs):  # noqa: F811 - the real one, fed bank magnitudes
    from pipeline.manifest import build_manifest as real

    kwargs.setdefault("bank_mag_f814w", _bank_mags(bank_size))
    return real(lrg, config, bank_size, *args, **kwargs)


def make_lrg_table(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    ra = rng.uniform(149.0, 151.5, n)
    dec = rng.uniform(1.0, 3.5, n)
    return pd.DataFrame({
        "lrg_id": rng.choice(10**9, n, replace=False).astype(np.int64),
        "brickname": [f"{int(r * 4):04d}p{int(d * 4):03d}" for r, d in zip(ra, dec)],
        "ra": ra, "dec": dec,
        "mag_r": rng.uniform(17.0, 20.5, n), "mag_g": rng.uniform(18.5, 22.0, n), "mag_z": rng.uniform(16.0, 19.5, n),
        "psfsize_g": rng.uniform(1.1, 1.8, n), "psfsize_r": rng.uniform(1.0, 1.6, n), "psfsize_z": rng.uniform(0.9, 1.5, n),
        "psfdepth_r": rng.uniform(23.3, 24.3, n),
    })


@pytest.fixture(scope="module")
def lrg():
    return make_lrg_table()


@pytest.fixture(scope="module")
def config():
    return load_run_config("demo")


@pytest.fixture(scope="module")
def manifest(lrg, config):
    return build_manifest(lrg, config, BANK_SIZE)


def test_columns_and_unique_stable_task_ids(manifest, config):
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    assert manifest["task_id"].is_unique
    row = manifest.iloc[0]
    role = "c" if row["is_control"] else "i"
    assert row["task_id"] == f"{config.experiment_id}-{row['lrg_id']}-{role}{row['replicate']}"
    assert (manifest["task_seed"] >= 0).all() and manifest["task_seed"].is_unique


@pytest.mark.parametrize("replicates,control_frac", [(1, 0.5), (3, 0.5), (2, 0.3)])
def test_control_fraction_of_tasks_per_split_within_1pct(lrg, config, replicates, control_frac):
    cfg = config.replace(replicates=replicates, control_frac={s: control_frac for s in SPLITS})
    df = build_manifest(lrg, cfg, BANK_SIZE)
    counts = manifest_counts(df)
    for split in SPLITS:
        assert counts[split]["tasks"] > 100
        assert abs(counts[split]["control_frac"] - control_frac) <= 0.01, (split, counts[split])
    hosts = df[~df["is_control"]].groupby("lrg_id").size()
    assert (hosts == replicates).all()
    assert (df[df["is_control"]].groupby("lrg_id").size() == 1).all()


def test_no_lrg_and_no_region_in_two_splits(manifest):
    assert (manifest.groupby("lrg_id")["region_split"].nunique() == 1).all()
    assert (manifest.groupby("region_id")["region_split"].nunique() == 1).all()
    assert set(manifest["region_split"]) == set(SPLITS)


def test_split_fractions_follow_the_config_over_many_regions(manifest, config):
    per_region = manifest.groupby("region_id")["region_split"].first().value_counts(normalize=True)
    for split in SPLITS:  # ~625 regions: binomial sigma ~0.02
        assert per_region[split] == pytest.approx(config.split_fractions[split], abs=0.06)


def test_controls_and_injection_hosts_are_disjoint_lrgs(manifest):
    controls = set(manifest.loc[manifest["is_control"], "lrg_id"])
    hosts = set(manifest.loc[~manifest["is_control"], "lrg_id"])
    assert controls and hosts and not controls & hosts


def test_regions_are_cells_of_the_configured_size():
    # same cell: within one cell; different cells: more than a cell apart in Dec or in RA cos(dec)
    # at Dec ~60 the RA cells are 0.1 / cos(60.05 deg) = 0.2003 deg wide: cell 50 is RA 10.017..10.217
    rid = region_ids(np.array([10.05, 10.15, 10.05, 10.05 + 0.15 / np.cos(np.radians(60.0))]),
                     np.array([60.02, 60.08, 60.15, 60.02]), 0.1)
    assert rid[0] == rid[1] and rid[0] != rid[2] and rid[0] != rid[3]


def test_deterministic_and_independent_of_input_row_order(lrg, config, manifest):
    again = build_manifest(lrg, config, BANK_SIZE)
    pd.testing.assert_frame_equal(manifest, again)
    shuffled = build_manifest(lrg.sample(frac=1.0, random_state=7).reset_index(drop=True), config, BANK_SIZE)
    pd.testing.assert_frame_equal(manifest, shuffled)
    other_seed = build_manifest(lrg, config.replace(seed=config.seed + 1), BANK_SIZE)
    assert not np.allclose(other_seed["theta_e_arcsec"].fillna(0), manifest["theta_e_arcsec"].fillna(0))


def test_a_tasks_parameters_do_not_depend_on_the_other_lrgs(lrg, config, manifest):
    part = build_manifest(lrg.iloc[:1500], config, BANK_SIZE)
    common = part.merge(manifest, on="task_id", suffixes=("_part", "_all"))
    assert len(common) > 500
    for col in ("task_seed", "theta_e_arcsec", "lens_e1", "src_x_arcsec", "cosmos_index", "src_mag_g"):
        np.testing.assert_array_equal(common[f"{col}_part"].to_numpy(), common[f"{col}_all"].to_numpy())


def test_controls_have_null_lens_and_source_fields(manifest):
    ctrl = manifest[manifest["is_control"]]
    assert (ctrl["lens_model"] == "CONTROL").all()
    for col in MANIFEST_COLUMNS[MANIFEST_COLUMNS.index("theta_e_arcsec"):]:
        assert ctrl[col].isna().all(), col
    inj = manifest[~manifest["is_control"]]
    assert (inj["lens_model"] == "SIE").all()
    assert inj.drop(columns=["cosmos_hlr_arcsec"]).notna().all().all()  # physical model: every source column


def test_priors(manifest, config, lrg):
    inj = manifest[~manifest["is_control"]]
    te = inj["theta_e_arcsec"].to_numpy()
    assert te.min() >= config.theta_e_min_arcsec and te.max() <= config.theta_e_max_arcsec
    lo, width = config.theta_e_min_arcsec, config.theta_e_max_arcsec - config.theta_e_min_arcsec
    assert stats.kstest(te, "uniform", args=(lo, width)).pvalue > 0.01
    # e1, e2 in lenstronomy's convention: recover q and phi with lenstronomy itself
    from lenstronomy.Util.param_util import ellipticity2phi_q, phi_q2_ellipticity

    phi, q = ellipticity2phi_q(inj["lens_e1"].to_numpy(), inj["lens_e2"].to_numpy())
    assert q.min() >= config.lens_q_min - 1e-9 and q.max() <= 1.0
    assert stats.kstest(q, "uniform", args=(config.lens_q_min, 1 - config.lens_q_min)).pvalue > 0.01
    e1, e2 = phi_q2_ellipticity(phi, q)
    np.testing.assert_allclose(e1, inj["lens_e1"], atol=1e-12)
    s = config.shear_sigma
    assert inj["shear_gamma1"].abs().max() <= 3 * s + 1e-12
    assert inj["shear_gamma1"].std() == pytest.approx(s, rel=0.1)
    assert inj["cosmos_index"].between(0, BANK_SIZE - 1).all() and inj["cosmos_index"].nunique() == BANK_SIZE
    assert inj["src_dmag"].between(config.src_dmag_min, config.src_dmag_max).all()
    np.testing.assert_allclose(inj["src_mag_r"], inj["lens_mag_r"] + inj["src_dmag"])
    np.testing.assert_allclose(inj["src_mag_g"] - inj["src_mag_r"], inj["src_gr"])
    np.testing.assert_allclose(inj["src_mag_r"] - inj["src_mag_z"], inj["src_rz"])
    # lens magnitude and survey conditions come from the LRG table
    merged = inj.merge(lrg, on="lrg_id")
    np.testing.assert_array_equal(merged["lens_mag_r"], merged["mag_r"])
    np.testing.assert_array_equal(merged["psfsize_r_x"], merged["psfsize_r_y"])
    # source radii: the inside-caustic fraction is as configured
    q_of = ellipticity2phi_q(inj["lens_e1"].to_numpy(), inj["lens_e2"].to_numpy())[1]
    r = np.hypot(inj["src_x_arcsec"], inj["src_y_arcsec"])
    inside = r <= CAUSTIC_RADIUS_FACTOR * np.sqrt(q_of) * te + 1e-12
    assert inside.mean() == pytest.approx(config.src_inside_caustic_frac, abs=0.03)
    assert (r <= config.src_outer_radius_theta_e * te + 1e-12).all()


def test_most_sources_are_multiply_imaged(manifest):
    """Independent check of the caustic approximation with lenstronomy's LensEquationSolver."""
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver
    from lenstronomy.Util.param_util import ellipticity2phi_q

    lens_model = LensModel(["SIE", "SHEAR"])
    solver = LensEquationSolver(lens_model)
    inj = manifest[~manifest["is_control"]].iloc[:80]
    n_images, inside = [], []
    for t in inj.itertuples():
        cx, cy = t.lens_x_arcsec, t.lens_y_arcsec
        kw = [{"theta_E": t.theta_e_arcsec, "e1": t.lens_e1, "e2": t.lens_e2, "center_x": cx, "center_y": cy},
              {"gamma1": t.shear_gamma1, "gamma2": t.shear_gamma2, "ra_0": cx, "dec_0": cy}]
        x, _ = solver.image_position_from_source(cx + t.src_x_arcsec, cy + t.src_y_arcsec, kw, min_distance=0.02,
                                                 search_window=4 * t.theta_e_arcsec, precision_limit=1e-8,
                                                 num_iter_max=60)
        n_images.append(len(x))
        q = ellipticity2phi_q(t.lens_e1, t.lens_e2)[1]
        inside.append(np.hypot(t.src_x_arcsec, t.src_y_arcsec) <= CAUSTIC_RADIUS_FACTOR * np.sqrt(q) * t.theta_e_arcsec)
    n_images, inside = np.array(n_images), np.array(inside)
    assert inside.sum() > 50
    assert (n_images[inside] >= 2).all()  # every "inside" source is multiply imaged
    assert (n_images >= 2).mean() >= 0.85


def test_hlr_filter_restricts_the_bank(lrg, config):
    hlr = np.linspace(0.05, 1.5, BANK_SIZE)
    df = build_manifest(lrg, config, BANK_SIZE, hlr, hlr_filter_arcsec=(0.1, 1.0))
    inj = df[~df["is_control"]]
    assert inj["cosmos_hlr_arcsec"].between(0.1, 1.0).all()
    np.testing.assert_allclose(inj["cosmos_hlr_arcsec"], hlr[inj["cosmos_index"].to_numpy(int)])


def test_max_tasks(lrg, config):
    df = build_manifest(lrg, config, BANK_SIZE, max_tasks=500)
    assert len(df) == 500
    df3 = build_manifest(lrg, config.replace(replicates=3), BANK_SIZE, max_tasks=600)
    assert 560 <= len(df3) <= 600


def test_hash_uniform_is_uniform_and_key_sensitive():
    u = hash_uniform(1, 2, np.arange(100000))
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 0.01
    assert hash_uniform(1, 2, 3)[0] != hash_uniform(1, 3, 2)[0]


def test_write_and_read_round_trip_with_checksums(tmp_path, manifest, config, lrg):
    lrg_path = tmp_path / "lrg.parquet"
    lrg.to_parquet(lrg_path)
    doc = write_manifest(manifest, str(tmp_path / "m"), config, {"lrg": str(lrg_path), "bank": {"uri": "b.h5", "sha256": "ab"}})
    back = read_manifest(str(tmp_path / "m"))
    pd.testing.assert_frame_equal(back, manifest, check_dtype=False)
    on_disk = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert on_disk == doc
    import hashlib

    assert on_disk["inputs"]["lrg"]["sha256"] == hashlib.sha256(lrg_path.read_bytes()).hexdigest()
    counts = on_disk["tasks_per_split"]
    assert sum(c["tasks"] for c in counts.values()) == len(manifest) == on_disk["n_tasks"]
    assert all(c["control"] + c["injection"] == c["tasks"] for c in counts.values())
    assert on_disk["config"]["seed"] == config.seed
    # the identity record the gate compares the rows with: built from the table that was written,
    # and the builder's manifests neither repeat a task nor share an LRG across splits or roles
    from pipeline.task_identity import manifest_identity

    ident = on_disk["identity"]
    assert ident == manifest_identity(back["task_id"], back["lrg_id"], back["region_split"], back["is_control"])
    assert ident["rows"] == len(manifest)
    assert (ident["dup_rows"], ident["multi_split"], ident["shared"]) == (0, 0, 0)


def test_bad_lrg_tables_give_input_errors(lrg, config):
    with pytest.raises(InputError, match="psfdepth_r"):
        build_manifest(lrg.drop(columns=["psfdepth_r"]), config, BANK_SIZE)
    with pytest.raises(InputError, match="empty"):
        build_manifest(lrg.iloc[:0], config, BANK_SIZE)
    dup = pd.concat([lrg.iloc[:5], lrg.iloc[:1]])
    with pytest.raises(InputError, match="lrg_id.*not unique"):
        build_manifest(dup, config, BANK_SIZE)
    bad = lrg.iloc[:10].copy()
    bad.loc[bad.index[3], "dec"] = np.nan
    with pytest.raises(InputError, match="dec"):
        build_manifest(bad, config, BANK_SIZE)
    with pytest.raises(InputError, match="bank_size"):
        build_manifest(lrg, config, 0)
    with pytest.raises(InputError, match="no galaxy"):
        build_manifest(lrg, config, 3, [5.0, 6.0, 7.0], hlr_filter_arcsec=(0.1, 1.0))
    with pytest.raises(InputError, match="split_fractions"):
        RunConfig(split_fractions={"train": 0.5, "val": 0.2, "test": 0.2})


def test_bad_manifest_files_give_input_errors(tmp_path, manifest, config):
    with pytest.raises(InputError, match="no such file"):
        read_manifest(str(tmp_path / "nothing"))
    d = tmp_path / "m"
    write_manifest(manifest, str(d), config, {})
    path = d / "manifest.parquet"
    manifest.drop(columns=["theta_e_arcsec"]).to_parquet(path)
    with pytest.raises(InputError, match=r"manifest.parquet: theta_e_arcsec"):
        read_manifest(str(d))
    manifest.iloc[:0].to_parquet(path)
    with pytest.raises(InputError, match="no tasks"):
        read_manifest(str(d))
    pd.concat([manifest.iloc[:3], manifest.iloc[:1]]).to_parquet(path)
    with pytest.raises(InputError, match="task_id.*not unique"):
        read_manifest(str(path))
    path.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a Parquet"):
        read_manifest(str(d))


# ---------------------------------------------------------------- source brightness models

def test_physical_sources_have_their_own_galaxys_brightness_and_template_colours(lrg, config):
    """demo/production: r = the galaxy's own F814W + the template's r - F814W at its redshift, no
    brightening; g - r and r - z within 3 sigma of the template (pipeline.bank.colours, the
    research note's CWW table); zphot used (clipped to 1-3) where the catalogue has one."""
    from pipeline.bank.colours import template_colours

    assert config.src_brightness == "physical" and config.src_brightening_mag == 0
    mags = _bank_mags(BANK_SIZE)
    zphot = np.full(BANK_SIZE, np.nan)
    zphot[:10] = np.linspace(0.3, 3.6, 10)
    df = build_manifest(lrg, config, BANK_SIZE, bank_mag_f814w=mags, bank_zphot=zphot)
    inj = df[~df["is_control"]]
    idx = inj["cosmos_index"].to_numpy(int)
    np.testing.assert_array_equal(inj["src_mag_f814w"], mags[idx])
    assert (inj["src_brightening_mag"] == 0).all()
    gr, rz, dr = template_colours(inj["src_sed"].to_numpy(str), inj["src_redshift"].to_numpy(float))
    # brightness: exactly the galaxy's own, through the template's r - F814W
    np.testing.assert_allclose(inj["src_mag_r"], mags[idx] + dr, atol=1e-12)
    np.testing.assert_allclose(inj["src_dmag"], inj["src_mag_r"] - inj["lens_mag_r"], atol=1e-12)
    s = config.src_colour_scatter_mag
    assert np.all(np.abs(inj["src_mag_g"] - inj["src_mag_r"] - gr) <= 3 * s + 1e-9)
    assert np.all(np.abs(inj["src_mag_r"] - inj["src_mag_z"] - rz) <= 3 * s + 1e-9)
    assert np.std(inj["src_mag_g"] - inj["src_mag_r"] - gr) == pytest.approx(s, rel=0.15)
    # redshift: the catalogue's where it has one (clipped to the table), drawn in [1, 3] otherwise
    z = inj["src_redshift"].to_numpy(float)
    known = idx < 10
    np.testing.assert_allclose(z[known], np.clip(zphot[idx[known]], 1.0, 3.0))
    assert z.min() >= 1.0 and z.max() <= 3.0
    assert stats.kstest(z[~known], "uniform", args=(1.0, 2.0)).pvalue > 0.01
    assert set(inj["src_sed"]) == {"Im", "Scd"}


def test_brightening_only_when_the_config_says_so_and_recorded(lrg, config):
    base = build_manifest(lrg, config, BANK_SIZE)
    bright = build_manifest(lrg, config.replace(src_brightening_mag=1.5), BANK_SIZE)
    inj0, inj1 = base[~base["is_control"]], bright[~bright["is_control"]]
    np.testing.assert_allclose(inj1["src_mag_r"], inj0["src_mag_r"] - 1.5)
    assert (inj1["src_brightening_mag"] == 1.5).all()
    with pytest.raises(InputError, match="src_brightening_mag"):
        config.replace(src_brightening_mag=-0.5)


def test_physical_model_refuses_a_bank_without_magnitudes(lrg, config):
    with pytest.raises(InputError, match="mag_f814w"):
        build_manifest(lrg, config, BANK_SIZE, bank_mag_f814w=None)


def test_lens_relative_option_keeps_the_earlier_prior(lrg, config):
    cfg = config.replace(src_brightness="lens_relative", src_dmag_min=4.0, src_dmag_max=6.5)
    df = build_manifest(lrg, cfg, BANK_SIZE)
    inj = df[~df["is_control"]]
    assert inj["src_dmag"].between(4.0, 6.5).all()
    np.testing.assert_allclose(inj["src_mag_r"], inj["lens_mag_r"] + inj["src_dmag"])
    assert inj["src_gr"].between(cfg.src_gr_min, cfg.src_gr_max).all()
    # how much brighter than the galaxy itself each source was made, on every row
    np.testing.assert_allclose(inj["src_brightening_mag"],
                               _bank_mags(BANK_SIZE)[inj["cosmos_index"].to_numpy(int)] - inj["src_mag_r"])
    assert inj["src_sed"].isna().all()
