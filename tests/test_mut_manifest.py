"""pipeline/manifest.py against truth computed independently (issue 20, mutation testing).

The reference here is written from the module docstring and SPEC, not from the code:

* splitmix64 in plain Python integers, checked against its published output sequences (Vigna's
  splitmix64.c, seed 0: 0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F; seed 1234567:
  6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
  16408922859458223821, as in Rosetta Code's "Pseudo-random numbers/Splitmix64");
* every task's parameters recomputed from its task_seed alone with that reference, Python's
  statistics.NormalDist for the normal quantile (not scipy's ndtri) and the docstring's formulas;
* sky regions, control counts, counts per split and file records worked out by hand.
Fast (no Spark, tables of a few hundred LRGs)."""

from __future__ import annotations

import hashlib
import json
import math
import types
from statistics import NormalDist

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import manifest as M
from pipeline.config import SPLITS, RunConfig, load_run_config
from pipeline.errors import InputError

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


# ---------------------------------------------------------------- reference (plain Python ints)

def ref_mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def ref_splitmix64(seed: int, n: int) -> list[int]:
    state, out = seed, []
    for _ in range(n):
        state = (state + GOLDEN) & MASK
        out.append(ref_mix(state))
    return out


def ref_hash64(*keys: int) -> int:
    """Docstring: keys mixed one at a time, h = mix(h ^ (key + golden)), h0 = pi's hex digits."""
    h = 0x243F6A8885A308D3
    for k in keys:
        h = ref_mix(h ^ ((int(k) + GOLDEN) & MASK))
    return h


def ref_u(*keys: int) -> float:
    """Uniform in (0, 1) from the top 53 bits: (k + 1/2) / 2^53."""
    return ((ref_hash64(*keys) >> 11) + 0.5) / 2.0**53


_ND = NormalDist()


def ref_clipped_normal(u: float, sigma: float) -> float:
    return sigma * min(max(_ND.inv_cdf(u), -3.0), 3.0)


def test_reference_splitmix64_reproduces_the_published_sequences():
    assert ref_splitmix64(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert ref_splitmix64(1234567, 5) == [6457827717110365317, 3203168211198807973, 9817491932198370423,
                                          4593380528125082431, 16408922859458223821]


# ---------------------------------------------------------------- hashing

def test_mix64_is_the_splitmix64_finaliser_of_the_published_sequences():
    states = np.array([(s + k * GOLDEN) & MASK for s in (0, 1234567) for k in (1, 2, 3)], dtype=np.uint64)
    got = M._mix64(states)
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == ref_splitmix64(0, 3) + ref_splitmix64(1234567, 3)


@pytest.mark.parametrize("keys", [(), (0,), (1, 2), (2, 1), (-1,), (-(2**63), 2**63 - 1), (20260204, 4, 987654321, 2)])
def test_hash64_of_scalar_keys_equals_the_reference(keys):
    got = M.hash64(*keys)
    assert got.dtype == np.uint64 and got.shape == (1,)
    assert int(got[0]) == ref_hash64(*keys)
    u = M.hash_uniform(*keys)
    assert u.dtype == np.float64 and u.shape == (1,)
    assert u[0] == ref_u(*keys)


def test_hash64_broadcasts_array_keys_element_by_element():
    ids = np.array([0, 1, 7, -5, 10**12, 2**62], dtype=np.int64)
    got = M.hash64(11, 3, ids)
    assert [int(v) for v in got] == [ref_hash64(11, 3, int(i)) for i in ids]
    got2 = M.hash64(ids, 9)
    assert [int(v) for v in got2] == [ref_hash64(int(i), 9) for i in ids]
    u = M.hash_uniform(11, 3, ids)
    np.testing.assert_array_equal(u, [ref_u(11, 3, int(i)) for i in ids])
    assert np.all((u > 0) & (u < 1))


# ---------------------------------------------------------------- sky regions

def test_region_ids_by_hand():
    # size 0.5: stride = 720 + 1 = 721; Dec 0 is band 180 (ref Dec 0.25: floor(720 cos 0.25deg) =
    # floor(719.993) = 719 RA cells); Dec 89.9 is band 359 (ref 89.75: floor(3.14) = 3 cells);
    # Dec 90 is band 360 (ref clipped to 90: one cell); Dec -90 is band 0 (ref -89.75: 3 cells)
    ra = np.array([0.0, 359.9, -0.1, 360.0, -1e-20, 200.0, 0.0, 300.0, 179.0, 270.0])
    dec = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 89.9, 90.0, -90.0, 90.0, 90.0])
    expect = [180 * 721, 180 * 721 + 718, 180 * 721 + 718, 180 * 721, 180 * 721,
              359 * 721 + 1, 360 * 721, 0 * 721 + 2, 360 * 721, 360 * 721]
    got = M.region_ids(ra, dec, 0.5)
    assert got.dtype == np.int64
    assert got.tolist() == expect
    # size 1 at Dec 60.3: band 150, ref 60.5, floor(360 cos 60.5deg) = floor(177.27) = 177 cells,
    # RA 100 -> floor(100 / 360 * 177) = floor(49.17) = 49; stride 361
    assert M.region_ids(np.array([100.0]), np.array([60.3]), 1).tolist() == [150 * 361 + 49]
    # size 60: stride 7; Dec 45 -> band 2, ref 60, floor(6 cos 60deg) = 3 cells, RA 250 -> cell 2
    assert M.region_ids(np.array([250.0, 119.0]), np.array([45.0, 45.0]), 60).tolist() == [2 * 7 + 2, 2 * 7 + 0]
    # scalars and lists are accepted
    assert M.region_ids([359.9], [0.0], 0.5).tolist() == [180 * 721 + 718]


def test_split_of_regions_follows_each_regions_reference_hash():
    cfg = RunConfig(seed=77, split_fractions={"train": 0.6, "val": 0.25, "test": 0.15})
    rid = np.arange(-3, 400, dtype=np.int64)
    got = M.split_of_regions(rid, cfg)
    expect = []
    for r in rid:
        u = ref_u(77, 1, int(r))
        expect.append("train" if u < 0.6 else "val" if u < 0.85 else "test")
    assert got.tolist() == expect
    assert set(expect) == set(SPLITS)  # every branch taken
    # a split with fraction 0 gets nothing; one with fraction 1 gets everything
    only_val = RunConfig(seed=77, split_fractions={"train": 0.0, "val": 1.0, "test": 0.0})
    assert set(M.split_of_regions(rid, only_val)) == {"val"}
    only_test = RunConfig(seed=77, split_fractions={"train": 0.0, "val": 0.0, "test": 1.0})
    assert set(M.split_of_regions(rid, only_test)) == {"test"}


def test_split_of_regions_intervals_are_closed_below_open_above():
    # splits own [0, f_train), [f_train, f_train + f_val), ...: a region whose draw is exactly
    # train's fraction (a fraction may be any float, so choose it equal to region 0's draw) is val
    u0 = ref_u(77, 1, 0)
    cfg = RunConfig(seed=77, split_fractions={"train": u0, "val": 0.5, "test": 0.5 - u0})
    assert M.split_of_regions(np.array([0]), cfg).tolist() == ["val"]
    just_above = RunConfig(seed=77, split_fractions={"train": np.nextafter(u0, 1), "val": 0.5,
                                                     "test": 0.5 - np.nextafter(u0, 1)})
    assert M.split_of_regions(np.array([0]), just_above).tolist() == ["train"]


def test_split_of_regions_puts_a_draw_past_the_last_edge_in_the_last_split():
    # fractions summing to less than 1 (the config allows 1e-9 short; here short enough to be hit):
    # whatever lies past the last edge belongs to the last split, never out of range
    cfg = types.SimpleNamespace(seed=77, split_fractions={"train": 0.3, "val": 0.2, "test": 0.0})
    rid = np.arange(200, dtype=np.int64)
    got = M.split_of_regions(rid, cfg).tolist()
    expect = ["train" if ref_u(77, 1, int(r)) < 0.3 else "val" if ref_u(77, 1, int(r)) < 0.5 else "test"
              for r in rid]
    assert got == expect and "test" in got


# ---------------------------------------------------------------- controls

def _closest_n_controls(n, frac, reps):
    """By brute force: the n_c whose task fraction n_c / (n_c + R (n - n_c)) is closest to frac
    (the first on ties; distances in IEEE doubles, so an exact tie such as 1/3 and 2/3 around 1/2
    is broken by rounding, as any float implementation breaks it)."""
    if n == 0:
        return 0
    dist = [abs(n_c / (n_c + reps * (n - n_c)) - frac) for n_c in range(n + 1)]
    return dist.index(min(dist))


@pytest.mark.parametrize("n,frac,reps,expect", [
    (0, 0.5, 1, 0), (1, 0.5, 1, 0), (1, 0.9, 1, 1), (10, 0.5, 1, 5), (10, 0.5, 3, 7),
    (10, 0.0, 3, 0), (7, 0.3, 2, 3), (2, 0.25, 1, 0), (100, 0.5, 4, 80),
])
def test_n_controls_for_by_hand(n, frac, reps, expect):
    # (10, 0.5, 3): 7 -> 7/16 = 0.4375, 8 -> 8/14 = 0.571: 7. (7, 0.3, 2): 3 -> 3/11 = 0.273,
    # 4 -> 4/10 = 0.4: 3. (2, 0.25, 1): 0 -> 0 and 1 -> 0.5 tie: the first. (100, 0.5, 4): 80/100.
    assert _closest_n_controls(n, frac, reps) == expect
    got = M.n_controls_for(n, frac, reps)
    assert type(got) is int and got == expect


def test_n_controls_for_small_splits_with_many_replicates_without_a_warning():
    # the candidate counts stop at n: one more (n + 1 controls of n LRGs) would divide by zero when
    # n + 1 = R, with numpy's RuntimeWarning
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in range(6):
            for reps in range(1, 8):
                for frac in (0.0, 0.2, 0.5, 0.9):
                    assert M.n_controls_for(n, frac, reps) == _closest_n_controls(n, frac, reps), (n, reps, frac)


# ---------------------------------------------------------------- bank filter

def test_allowed_cosmos_by_hand():
    allowed, hlr = M._allowed_cosmos(4, None, None)
    assert allowed.dtype == np.int64 and allowed.tolist() == [0, 1, 2, 3] and hlr is None
    allowed, hlr = M._allowed_cosmos(np.int64(3), [0.2, 0.5, 0.9], None)
    assert allowed.tolist() == [0, 1, 2] and hlr.dtype == np.float64 and hlr.tolist() == [0.2, 0.5, 0.9]
    # the filter is inclusive at both ends; NaN never passes
    allowed, hlr = M._allowed_cosmos(6, [0.1, 0.2, np.nan, 0.5, 1.0, 1.01], (0.2, 1.0))
    assert allowed.dtype == np.int64 and allowed.tolist() == [1, 3, 4]
    np.testing.assert_array_equal(hlr, [0.1, 0.2, np.nan, 0.5, 1.0, 1.01])
    allowed, _ = M._allowed_cosmos(1, [0.3], (0.3, 0.3))
    assert allowed.tolist() == [0]
    # radii handed over as a list with a missing value: NaN, never inside the filter
    allowed, hlr = M._allowed_cosmos(4, [0.5, None, 0.7, 2.0], (0.1, 1.0))
    assert allowed.tolist() == [0, 2] and hlr.dtype == np.float64 and np.isnan(hlr[1])


@pytest.mark.parametrize("size", [0, -2, 2.0, "3", None])
def test_allowed_cosmos_refuses_a_bad_bank_size(size):
    with pytest.raises(InputError) as err:
        M._allowed_cosmos(size, None, None)
    assert err.value.source == "bank"
    assert err.value.problem == f"bank_size must be a positive integer, got {size!r}"


def test_allowed_cosmos_refuses_radii_of_the_wrong_length_or_an_empty_filter():
    with pytest.raises(InputError) as err:
        M._allowed_cosmos(3, [0.1, 0.2], None)
    assert (err.value.source, err.value.problem) == ("bank: hlr_arcsec", "has 2 values for a bank of 3 galaxies")
    with pytest.raises(InputError) as err:
        M._allowed_cosmos(2, [[0.1, 0.2]], None)  # right size, wrong shape
    assert err.value.problem == "has 2 values for a bank of 2 galaxies"
    with pytest.raises(InputError) as err:
        M._allowed_cosmos(2, [0.1, np.nan], (0.2, 1.0))
    assert (err.value.source, err.value.problem) == (
        "bank: hlr_arcsec", "no galaxy has a half-light radius inside the filter [0.2, 1.0] arcsec")


# ---------------------------------------------------------------- whole manifest, task by task

N_LRG = 400
BANK = 25


def lrg_table(n=N_LRG, first_id=1000):
    """A small LRG table; ids consecutive (their hashes are what decide everything)."""
    i = np.arange(n)
    ra = 150.0 + (i * 0.0137) % 1.9
    dec = 1.0 + (i * 0.0071) % 1.7
    return pd.DataFrame({
        "lrg_id": (first_id + i * 7).astype(np.int64),
        "brickname": [f"{1500 + int(r * 10):04d}p{10 + int(d * 10):03d}" for r, d in zip(ra, dec)],
        "ra": ra, "dec": dec,
        "mag_r": 17.0 + (i % 35) * 0.1,
        "psfsize_g": 1.1 + (i % 7) * 0.1, "psfsize_r": 1.0 + (i % 5) * 0.1, "psfsize_z": 0.9 + (i % 3) * 0.1,
        "psfdepth_r": 23.5 + (i % 4) * 0.2,
    })


def bank_mags(n=BANK):
    return np.linspace(20.0, 24.0, n)


def ref_split_and_controls(lrg: pd.DataFrame, cfg: RunConfig) -> pd.DataFrame:
    """region, split and role of each LRG, from the reference hash and the brute-force n_c."""
    t = lrg.copy()
    t["region_id"] = M.region_ids(t["ra"], t["dec"], cfg.region_size_deg)  # checked by hand above
    edges = np.cumsum([cfg.split_fractions[s] for s in SPLITS])
    t["region_split"] = [SPLITS[min(int(np.sum(ref_u(cfg.seed, 1, int(r)) >= edges)), 2)] for r in t["region_id"]]
    t["is_control"] = False
    for split in SPLITS:
        part = t[t["region_split"] == split]
        n_c = _closest_n_controls(len(part), cfg.control_frac[split], cfg.replicates)
        ranked = sorted(part["lrg_id"], key=lambda i: ref_u(cfg.seed, 2, int(i)))
        t.loc[t["lrg_id"].isin(ranked[:n_c]), "is_control"] = True
    return t


def ref_task(cfg: RunConfig, lrg_row, replicate: int, allowed, hlr=None, mag814=None, zphot=None) -> dict:
    """One task's row, from the docstring's recipe with the reference hash."""
    seed = ref_hash64(cfg.seed, 4, int(lrg_row.lrg_id), replicate) >> 1
    out = {"task_seed": seed, "replicate": replicate, "lrg_id": int(lrg_row.lrg_id)}
    if lrg_row.is_control:
        out["task_id"] = f"{cfg.experiment_id}-{int(lrg_row.lrg_id)}-c{replicate}"
        return out
    out["task_id"] = f"{cfg.experiment_id}-{int(lrg_row.lrg_id)}-i{replicate}"

    def u(name):
        return ref_u(seed, M._STREAM[name])

    te = cfg.theta_e_min_arcsec + (cfg.theta_e_max_arcsec - cfg.theta_e_min_arcsec) * u("theta_e")
    q = cfg.lens_q_min + (1 - cfg.lens_q_min) * u("q")
    phi = math.pi * u("phi_lens")
    ell = (1 - q) / (1 + q)
    k = min(int(u("cosmos") * len(allowed)), len(allowed) - 1)
    cosmos = int(allowed[k])
    r_in = 0.8 * math.sqrt(q) * te
    r_out = cfg.src_outer_radius_theta_e * te
    if u("inside") < cfg.src_inside_caustic_frac:
        lo, hi = 0.0, r_in
    else:
        lo, hi = (0.0 if r_out <= r_in else r_in), r_out
    radius = math.sqrt(lo * lo + (hi * hi - lo * lo) * u("src_r"))
    angle = 2 * math.pi * u("src_angle")
    mag_r = float(lrg_row.mag_r)
    f814 = float(mag814[cosmos]) if mag814 is not None else math.nan
    if cfg.src_brightness == "lens_relative":
        dmag = cfg.src_dmag_min + (cfg.src_dmag_max - cfg.src_dmag_min) * u("dmag")
        gr = cfg.src_gr_min + (cfg.src_gr_max - cfg.src_gr_min) * u("gr")
        rz = cfg.src_rz_min + (cfg.src_rz_max - cfg.src_rz_min) * u("rz")
        src_r, z, sed, bright = mag_r + dmag, math.nan, None, f814 - (mag_r + dmag)
    else:
        from pipeline.bank.colours import template_colours

        zp = float(zphot[cosmos]) if zphot is not None else math.nan
        z = min(max(zp, cfg.src_z_min), cfg.src_z_max) if math.isfinite(zp) else \
            cfg.src_z_min + (cfg.src_z_max - cfg.src_z_min) * u("src_z")
        sed = ("Im", "Scd")[min(int(u("src_sed") * 2), 1)]
        t_gr, t_rz, t_dr = (float(v[0]) for v in template_colours(np.array([sed]), np.array([z])))
        gr = t_gr + ref_clipped_normal(u("gr_scatter"), cfg.src_colour_scatter_mag)
        rz = t_rz + ref_clipped_normal(u("rz_scatter"), cfg.src_colour_scatter_mag)
        src_r = f814 + t_dr - cfg.src_brightening_mag
        dmag, bright = src_r - mag_r, float(cfg.src_brightening_mag)
    out.update({
        "theta_e_arcsec": te, "lens_e1": ell * math.cos(2 * phi), "lens_e2": ell * math.sin(2 * phi),
        "shear_gamma1": ref_clipped_normal(u("gamma1"), cfg.shear_sigma),
        "shear_gamma2": ref_clipped_normal(u("gamma2"), cfg.shear_sigma),
        "lens_x_arcsec": ref_clipped_normal(u("lens_x"), cfg.lens_center_sigma_arcsec),
        "lens_y_arcsec": ref_clipped_normal(u("lens_y"), cfg.lens_center_sigma_arcsec),
        "cosmos_index": cosmos, "cosmos_hlr_arcsec": float(hlr[cosmos]) if hlr is not None else math.nan,
        "src_x_arcsec": radius * math.cos(angle), "src_y_arcsec": radius * math.sin(angle),
        "src_phi_rad": 2 * math.pi * u("src_phi"), "src_dmag": dmag,
        "src_mag_g": src_r + gr, "src_mag_r": src_r, "src_mag_z": src_r - rz, "src_mag_f814w": f814,
        "src_redshift": z, "src_sed": sed, "src_brightening_mag": bright, "src_gr": gr, "src_rz": rz,
    })
    return out


def ref_manifest(lrg, cfg, allowed, hlr=None, mag814=None, zphot=None) -> pd.DataFrame:
    t = ref_split_and_controls(lrg, cfg)
    rows = []
    for row in t.itertuples():
        for rep in ([0] if row.is_control else range(cfg.replicates)):
            r = ref_task(cfg, row, rep, allowed, hlr, mag814, zphot)
            r.update({"brickname": row.brickname, "region_id": int(row.region_id),
                      "region_split": row.region_split, "is_control": bool(row.is_control)})
            rows.append(r)
    return pd.DataFrame(rows).sort_values(["brickname", "lrg_id", "replicate"]).reset_index(drop=True)


FLOAT_COLS = [c for c in M.INJECTION_COLUMNS if c not in ("cosmos_index", "src_sed")]


def assert_manifest_matches(got: pd.DataFrame, ref: pd.DataFrame, lrg: pd.DataFrame, cfg: RunConfig):
    assert tuple(got.columns) == M.MANIFEST_COLUMNS
    assert len(got) == len(ref)
    for col in ("task_id", "lrg_id", "replicate", "task_seed", "brickname", "region_id", "region_split", "is_control"):
        assert got[col].tolist() == ref[col].tolist(), col
    inj = ~ref["is_control"].to_numpy()
    for col in FLOAT_COLS:
        want = ref[col].to_numpy(float) if col in ref else np.full(len(ref), np.nan)
        np.testing.assert_allclose(got[col].to_numpy(float), want, rtol=1e-12, atol=1e-12, err_msg=col)
        assert got.loc[~inj, col].isna().all(), col
    assert str(got["cosmos_index"].dtype) == "Int64"
    assert got.loc[~inj, "cosmos_index"].isna().all()
    assert got.loc[inj, "cosmos_index"].astype(int).tolist() == ref.loc[inj, "cosmos_index"].astype(int).tolist()
    assert got["src_sed"].tolist() == [None if v is None or v != v else v for v in ref["src_sed"].tolist()]
    # per-task constants and the lens's own columns, typed as the contract says
    assert (got["variant"] == cfg.variant).all() and (got["experiment_id"] == cfg.experiment_id).all()
    assert got["lens_model"].tolist() == ["CONTROL" if c else "SIE" for c in ref["is_control"]]
    by_id = lrg.set_index("lrg_id").loc[got["lrg_id"]]
    np.testing.assert_array_equal(got["lens_mag_r"], by_id["mag_r"])
    for col in ("ra", "dec", "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r"):
        np.testing.assert_array_equal(got[col].to_numpy(), by_id[col].to_numpy(float))
        assert got[col].dtype == np.float64, col
    for col in ("lrg_id", "region_id", "replicate", "task_seed"):
        assert got[col].dtype == np.int64, col
    assert got["brickname"].map(type).eq(str).all()
    assert got["is_control"].dtype == bool
    assert got.index.tolist() == list(range(len(got)))


def test_lens_relative_manifest_equals_the_reference_task_by_task():
    # every range with a non-zero lower end, so that max - min and max + min differ
    cfg = RunConfig(seed=20261201, experiment_id="mut", variant="v1", region_size_deg=0.2, replicates=2,
                    theta_e_min_arcsec=0.6, theta_e_max_arcsec=2.2, lens_q_min=0.35,
                    src_dmag_min=3.5, src_dmag_max=6.0, src_gr_min=0.1, src_gr_max=0.9, src_rz_min=0.05,
                    src_rz_max=0.7,
                    shear_sigma=0.05, lens_center_sigma_arcsec=0.03, src_outer_radius_theta_e=1.5,
                    split_fractions={"train": 0.5, "val": 0.3, "test": 0.2},
                    control_frac={"train": 0.4, "val": 0.25, "test": 0.6})
    assert cfg.src_brightness == "lens_relative"
    lrg = lrg_table()
    hlr = np.linspace(0.05, 1.25, BANK)
    got = M.build_manifest(lrg.sample(frac=1.0, random_state=3), cfg, BANK, hlr, hlr_filter_arcsec=(0.3, 1.0),
                           bank_mag_f814w=bank_mags())
    allowed = np.flatnonzero((hlr >= 0.3) & (hlr <= 1.0))
    ref = ref_manifest(lrg, cfg, allowed, hlr=hlr, mag814=bank_mags())
    assert_manifest_matches(got, ref, lrg, cfg)
    # every branch of the recipe is exercised by this table
    assert set(ref["region_split"]) == set(SPLITS) and ref["is_control"].any() and (~ref["is_control"]).any()
    inj = ref[~ref["is_control"]]
    g = np.abs(np.concatenate([inj[c] / s for c, s in (("shear_gamma1", 0.05), ("shear_gamma2", 0.05),
                                                       ("lens_x_arcsec", 0.03), ("lens_y_arcsec", 0.03))]))
    assert np.isclose(g, 3.0).sum() >= 2  # draws clipped at 3 sigma
    r = np.hypot(inj["src_x_arcsec"], inj["src_y_arcsec"])
    assert (r > inj["theta_e_arcsec"]).any()  # some sources in the annulus beyond theta_E


def test_physical_manifest_equals_the_reference_task_by_task():
    cfg = load_run_config("demo").replace(replicates=3, src_brightening_mag=0.7, src_inside_caustic_frac=0.6,
                                          src_outer_radius_theta_e=0.5, shear_sigma=0.04, src_z_min=1.1,
                                          src_z_max=2.9, src_colour_scatter_mag=0.15)
    assert cfg.src_brightness == "physical"
    lrg = lrg_table(n=300, first_id=5)
    zphot = np.full(BANK, np.nan)
    zphot[:8] = [0.2, 0.9, 1.0, 1.7, 2.5, 3.0, 3.4, 5.0]
    got = M.build_manifest(lrg, cfg, BANK, bank_mag_f814w=bank_mags(), bank_zphot=zphot)
    ref = ref_manifest(lrg, cfg, np.arange(BANK), mag814=bank_mags(), zphot=zphot)
    assert_manifest_matches(got, ref, lrg, cfg)
    inj = ref[~ref["is_control"]]
    assert set(inj["src_sed"]) == {"Im", "Scd"}
    assert (inj["cosmos_index"] < 8).any() and (inj["cosmos_index"] >= 8).any()  # zphot known and unknown
    # r_out = 0.5 theta_E < r_in = 0.8 sqrt(q) theta_E whenever q > 0.39: the "annulus" is then the
    # disc of radius r_out (the reference's other branch); inside draws still reach out to r_in
    r = np.hypot(inj["src_x_arcsec"], inj["src_y_arcsec"])
    assert (r > 0.5 * inj["theta_e_arcsec"]).any()


def test_physical_manifest_without_zphot_draws_every_redshift():
    cfg = load_run_config("demo")
    lrg = lrg_table(n=60)
    got = M.build_manifest(lrg, cfg, BANK, bank_mag_f814w=bank_mags())
    ref = ref_manifest(lrg, cfg, np.arange(BANK), mag814=bank_mags())
    assert_manifest_matches(got, ref, lrg, cfg)


@pytest.mark.parametrize("mags", [None, np.r_[bank_mags(BANK - 1), np.nan]])
def test_physical_model_refuses_a_bank_without_every_magnitude(mags):
    cfg = load_run_config("demo")
    lrg = lrg_table(n=200)
    with pytest.raises(InputError) as err:
        M.build_manifest(lrg, cfg, BANK, bank_mag_f814w=mags)
    assert err.value.source == "bank: mag_f814w"
    assert err.value.problem == ("the physical source model needs every drawn galaxy's F814W magnitude "
                                 "(build the bank with `dhs bank build` / `dhs bank synth`)")


def test_lens_relative_manifest_without_bank_magnitudes_has_nan_brightening():
    cfg = RunConfig(seed=3, region_size_deg=0.2)
    lrg = lrg_table(n=40)
    got = M.build_manifest(lrg, cfg, BANK)
    ref = ref_manifest(lrg, cfg, np.arange(BANK))
    assert_manifest_matches(got, ref, lrg, cfg)
    inj = got[~got["is_control"]]
    assert inj["src_mag_f814w"].isna().all() and inj["src_brightening_mag"].isna().all()
    assert inj["cosmos_hlr_arcsec"].isna().all() and inj["src_redshift"].isna().all()


def _fixed_draws(value):
    return (lambda name: np.full(3, value)), (lambda name, sigma: np.zeros(3))


@pytest.mark.parametrize("brightness", ["lens_relative", "physical"])
def test_source_photometry_gives_one_float_value_per_task(brightness):
    """The helper's contract: every quantity an array of n per-task values (n = 3 here)."""
    cfg = RunConfig(src_brightness=brightness, src_brightening_mag=0.25)
    u, normal = _fixed_draws(0.5)
    lens_r = np.array([18.0, 19.0, 20.0])
    mags = [21.0, 22.0, 23.0, 24.0] if brightness == "physical" else None
    out = M._source_photometry(cfg, lens_r, np.array([3, 0, 3]), u, normal, mags, None)
    for key, values in out.items():
        assert np.shape(values) == (3,), key
        if key != "src_sed":
            assert np.asarray(values).dtype == np.float64, key
    if brightness == "lens_relative":
        # U[1, 3] and U[0.2, 1.0], U[0, 0.8] at u = 1/2; no bank magnitudes: F814W and brightening NaN
        np.testing.assert_allclose(out["src_mag_r"], lens_r + 2.0)
        assert np.isnan(out["src_mag_f814w"]).all() and np.isnan(out["src_brightening_mag"]).all()
        assert np.isnan(out["src_redshift"]).all() and out["src_sed"].tolist() == [None] * 3
    else:
        # z = 2 (middle of [1, 3]), SED Scd (u * 2 = 1), no scatter: the template's colours at z = 2
        from pipeline.bank.colours import template_colours

        gr, rz, dr = template_colours(np.array(["Scd"]), np.array([2.0]))
        np.testing.assert_allclose(out["src_mag_r"], np.array([24.0, 21.0, 24.0]) + dr[0] - 0.25)
        np.testing.assert_allclose(out["src_gr"], gr[0]) and np.testing.assert_allclose(out["src_rz"], rz[0])
        assert out["src_redshift"].tolist() == [2.0] * 3 and out["src_sed"].tolist() == ["Scd"] * 3
        assert out["src_brightening_mag"].tolist() == [0.25] * 3


def test_bank_lists_with_missing_values_act_as_nan():
    """Bank magnitudes and redshifts handed over as lists with None: a missing zphot means a drawn
    redshift, a missing F814W magnitude is refused by the physical model and is NaN for the
    lens-relative one (as NaN is)."""
    lrg = lrg_table(n=80)
    mags = [float(m) for m in bank_mags()]
    zphot = [None] * BANK
    zphot[:4] = [1.5, None, 2.2, 9.0]
    cfg = load_run_config("demo")
    got = M.build_manifest(lrg, cfg, BANK, bank_mag_f814w=mags, bank_zphot=zphot)
    ref = ref_manifest(lrg, cfg, np.arange(BANK), mag814=np.array(mags),
                       zphot=np.array([np.nan if z is None else z for z in zphot]))
    assert_manifest_matches(got, ref, lrg, cfg)
    with_gap = mags[:3] + [None] + mags[4:]
    drawn = set(got["cosmos_index"].dropna().astype(int))
    assert 3 in drawn
    with pytest.raises(InputError, match="mag_f814w"):
        M.build_manifest(lrg, cfg, BANK, bank_mag_f814w=with_gap)
    rel = RunConfig(seed=cfg.seed, region_size_deg=cfg.region_size_deg, split_fractions=cfg.split_fractions)
    out = M.build_manifest(lrg, rel, BANK, bank_mag_f814w=with_gap)
    inj = out[~out["is_control"]]
    gap = inj["cosmos_index"].astype(int) == 3
    assert gap.any() and inj.loc[gap, "src_mag_f814w"].isna().all() and inj.loc[gap, "src_brightening_mag"].isna().all()
    assert inj.loc[~gap, "src_mag_f814w"].notna().all()


def test_a_draw_at_the_top_of_the_unit_interval_stays_inside_the_bank(monkeypatch):
    """The largest uniform the formula gives, (2^53 - 1 + 1/2) 2^-53, rounds to exactly 1.0 in
    doubles (k + 1/2 is not representable for k >= 2^52), so a draw times a bank of 3 can be 3.0
    and times the 2 SEDs 2.0: the index must be capped at the last galaxy and the last SED."""
    top = ((2**53 - 1) + 0.5) * 2.0**-53
    assert top == 1.0 and 3 * top == 3.0
    monkeypatch.setattr(M, "hash_uniform", lambda *keys: np.full(np.broadcast(*keys).shape or (1,), top))
    lrg = lrg_table(n=6)
    for cfg in (RunConfig(seed=1, control_frac={s: 0.0 for s in SPLITS}), load_run_config("demo")):
        df = M.build_manifest(lrg, cfg, 3, bank_mag_f814w=[20.0, 21.0, 22.0])
        inj = df[~df["is_control"]]
        assert len(inj) and (inj["cosmos_index"] == 2).all()
    df = M.build_manifest(lrg, load_run_config("demo"), 3, bank_mag_f814w=[20.0, 21.0, 22.0])
    assert set(df["src_sed"].dropna()) == {"Scd"}
    assert (df.loc[~df["is_control"], "src_redshift"] <= 3.0).all()


def test_inside_caustic_fraction_is_a_half_open_interval_of_the_draw():
    """P(inside) = f means u in [0, f): a task whose draw equals f exactly (f may be any float:
    choose it equal to one task's draw) goes to the annulus."""
    lrg = lrg_table(n=40)
    cfg = RunConfig(seed=4, region_size_deg=0.2, control_frac={s: 0.0 for s in SPLITS})
    first = M.build_manifest(lrg, cfg, BANK)
    row = first.iloc[0]
    f = ref_u(int(row["task_seed"]), M._STREAM["inside"])
    cfg_f = cfg.replace(src_inside_caustic_frac=f, src_outer_radius_theta_e=2.0)
    got = M.build_manifest(lrg, cfg_f, BANK)
    assert_manifest_matches(got, ref_manifest(lrg, cfg_f, np.arange(BANK)), lrg, cfg_f)
    t = got.iloc[0]
    assert t["task_id"] == row["task_id"]
    ell = np.hypot(t["lens_e1"], t["lens_e2"])  # (1 - q) / (1 + q)
    r_in = 0.8 * np.sqrt((1 - ell) / (1 + ell)) * t["theta_e_arcsec"]
    assert np.hypot(t["src_x_arcsec"], t["src_y_arcsec"]) >= r_in * (1 - 1e-9)  # in the annulus


def test_annulus_that_collapses_onto_the_caustic_disc_is_the_disc():
    """Round lenses (q = 1: r_in = 0.8 theta_E) and an outer radius of exactly 0.8 theta_E: the
    annulus r_in .. r_out is empty, so the other sources fill the disc of radius r_out as well,
    uniformly in area (radius = r_out sqrt(u)), never all on its rim."""
    lrg = lrg_table(n=60)
    cfg = RunConfig(seed=8, region_size_deg=0.2, lens_q_min=1.0, src_outer_radius_theta_e=0.8,
                    src_inside_caustic_frac=0.3, control_frac={s: 0.0 for s in SPLITS})
    got = M.build_manifest(lrg, cfg, BANK)
    assert_manifest_matches(got, ref_manifest(lrg, cfg, np.arange(BANK)), lrg, cfg)
    r = np.hypot(got["src_x_arcsec"], got["src_y_arcsec"]) / (0.8 * got["theta_e_arcsec"])
    assert (r <= 1 + 1e-12).all() and (r < 0.999).mean() > 0.9


def test_integer_typed_lrg_columns_become_the_contracts_int64_and_float64():
    """An LRG table with int32 ids and integer-valued numeric columns (the survey's contract only
    asks for numbers): the manifest's lrg_id is int64, its coordinates, PSF sizes, depth and lens
    magnitude float64 with the same values, and the tasks are those of the float table."""
    lrg = lrg_table(n=50)
    ints = lrg.assign(lrg_id=lrg["lrg_id"].astype(np.int32), ra=lrg["ra"].round().astype(np.int32),
                      dec=lrg["dec"].round().astype(np.int16), mag_r=lrg["mag_r"].round().astype(np.int64),
                      psfsize_g=1, psfsize_r=np.int32(2), psfsize_z=np.int8(1), psfdepth_r=24)
    as_float = ints.astype({c: float for c in ints.columns if c not in ("lrg_id", "brickname")})
    as_float["lrg_id"] = as_float["lrg_id"].astype(np.int64)
    cfg = RunConfig(seed=12, region_size_deg=0.5)
    got = M.build_manifest(ints, cfg, BANK)
    want = M.build_manifest(as_float, cfg, BANK)
    for col in ("lrg_id", "region_id", "replicate", "task_seed"):
        assert got[col].dtype == np.int64, col
    for col in ("ra", "dec", "psfsize_g", "psfsize_r", "psfsize_z", "psfdepth_r", "lens_mag_r"):
        assert got[col].dtype == np.float64, col
    pd.testing.assert_frame_equal(got, want)
    assert_manifest_matches(got, ref_manifest(as_float, cfg, np.arange(BANK)), as_float, cfg)


def test_validate_lrg_gives_the_canonical_order_and_a_fresh_index():
    lrg = lrg_table(n=10)
    shuffled = lrg.sample(frac=1.0, random_state=1)
    shuffled.index = shuffled.index + 100
    out = M._validate_lrg(shuffled, "t")
    assert out["lrg_id"].tolist() == sorted(lrg["lrg_id"])
    assert out.index.tolist() == list(range(10)) and list(out.columns) == list(lrg.columns)
    with pytest.raises(InputError) as err:
        M._validate_lrg(lrg.drop(columns=["mag_r"]), "my table")
    assert err.value.source == "my table: mag_r"


def test_build_manifest_names_its_source_in_errors():
    with pytest.raises(InputError) as err:
        M.build_manifest(lrg_table(n=3).drop(columns=["ra"]), RunConfig(), BANK, source="lrgs.parquet")
    assert err.value.source == "lrgs.parquet: ra"
    with pytest.raises(InputError) as err:
        M.build_manifest(lrg_table(n=3).drop(columns=["ra"]), RunConfig(), BANK)
    assert err.value.source == "LRG table: ra"


# ---------------------------------------------------------------- max_tasks

def _prefix_manifest_sizes(lrg, cfg):
    """Tasks for each prefix of the LRGs in subset-hash order (the reference's 'subset' rank)."""
    ranked = sorted(lrg["lrg_id"], key=lambda i: (ref_u(cfg.seed, 3, int(i)), i))
    return ranked


@pytest.mark.parametrize("max_tasks", [1, 2, 37, 150])
def test_max_tasks_with_one_replicate_keeps_exactly_the_first_lrgs_by_subset_hash(max_tasks):
    cfg = RunConfig(seed=9, region_size_deg=0.2)
    lrg = lrg_table(n=200)
    got = M.build_manifest(lrg, cfg, BANK, max_tasks=max_tasks)
    ranked = _prefix_manifest_sizes(lrg, cfg)
    assert len(got) == max_tasks
    assert sorted(got["lrg_id"]) == sorted(ranked[:max_tasks])
    # the same as building the manifest of those LRGs directly
    pd.testing.assert_frame_equal(got, M.build_manifest(lrg[lrg["lrg_id"].isin(ranked[:max_tasks])], cfg, BANK))


def test_max_tasks_keeps_the_bank_radii_filter_and_redshifts():
    """The subset is built with the same bank: radii (and their filter) and zphot reach its tasks."""
    cfg = load_run_config("demo").replace(replicates=2)
    lrg = lrg_table(n=120)
    hlr = np.linspace(0.05, 1.25, BANK)
    zphot = np.where(np.arange(BANK) % 2 == 0, 1.7, np.nan)
    kw = dict(bank_mag_f814w=bank_mags(), bank_zphot=zphot, hlr_filter_arcsec=(0.3, 1.0))
    got = M.build_manifest(lrg, cfg, BANK, hlr, max_tasks=50, **kw)
    subset = lrg[lrg["lrg_id"].isin(got["lrg_id"])]
    pd.testing.assert_frame_equal(got, M.build_manifest(subset, cfg, BANK, hlr, **kw))
    inj = got[~got["is_control"]]
    assert inj["cosmos_hlr_arcsec"].between(0.3, 1.0).all() and (inj["src_redshift"] == 1.7).any()


def test_max_tasks_larger_than_the_table_keeps_everything():
    cfg = RunConfig(seed=9, region_size_deg=0.2, replicates=2)
    lrg = lrg_table(n=30)
    full = M.build_manifest(lrg, cfg, BANK)
    pd.testing.assert_frame_equal(M.build_manifest(lrg, cfg, BANK, max_tasks=10_000), full)
    pd.testing.assert_frame_equal(M.build_manifest(lrg, cfg, BANK, max_tasks=len(full)), full)
    assert len(M.build_manifest(lrg, cfg, BANK, max_tasks=len(full) - 1)) < len(full)


@pytest.mark.parametrize("reps,cf,max_tasks", [(3, 0.5, 100), (3, 0.5, 251), (2, 0.3, 64), (4, 0.2, 9),
                                               (3, 0.0, 90), (3, 0.0, 91), (5, 0.6, 1), (2, 0.5, 300),
                                               (3, 0.0, 2), (2, 0.5, 10), (4, 0.2, 13), (2, 0.5, 4)])
def test_max_tasks_with_replicates_is_the_largest_prefix_that_fits(reps, cf, max_tasks):
    """Brute force over every prefix of the subset-hash order, its task count worked out with the
    reference (split of each LRG's region, the closest control count per split): the answer is
    the largest prefix with at most max_tasks tasks (or, if none fits, the first LRG's tasks: with
    3 replicates and no controls one LRG is already 3 tasks > max_tasks = 2; what the code does
    then, noted in docs/mutation_testing.md)."""
    cfg = RunConfig(seed=11, region_size_deg=0.2, replicates=reps, control_frac={s: cf for s in SPLITS})
    lrg = lrg_table(n=160)
    ranked = _prefix_manifest_sizes(lrg, cfg)
    split_of = ref_split_and_controls(lrg, cfg).set_index("lrg_id")["region_split"]
    sizes, per_split = {}, {s: 0 for s in SPLITS}
    for n, lrg_id in enumerate(ranked, start=1):
        per_split[split_of[lrg_id]] += 1
        sizes[n] = 0
        for s, k in per_split.items():
            n_c = _closest_n_controls(k, cf, reps)
            sizes[n] += n_c + reps * (k - n_c)
    fits = [n for n, s in sizes.items() if s <= max_tasks]
    n_best = max(fits, key=lambda n: (sizes[n], -n)) if fits else 1
    got = M.build_manifest(lrg, cfg, BANK, max_tasks=max_tasks)
    assert len(got) == sizes[n_best]
    assert set(got["lrg_id"]) == set(ranked[:n_best])


@pytest.mark.parametrize("bad", [0, -3, 0.5])
def test_max_tasks_below_one_is_refused(bad):
    with pytest.raises(InputError) as err:
        M.build_manifest(lrg_table(n=5), RunConfig(), BANK, max_tasks=bad)
    assert (err.value.source, err.value.problem) == ("--max-tasks", f"must be >= 1, got {bad}")


# ---------------------------------------------------------------- counts, files, reading

def test_manifest_counts_by_hand():
    df = pd.DataFrame({
        "region_split": ["train", "train", "train", "val", "train", "val"],
        "is_control": [True, False, False, True, True, True],
        "lrg_id": [1, 2, 2, 3, 4, 5],
        "region_id": [10, 10, 11, 20, 12, 20],
    })
    assert M.manifest_counts(df) == {
        "train": {"tasks": 4, "control": 2, "injection": 2, "control_frac": 0.5, "lrgs": 3, "regions": 3},
        "val": {"tasks": 2, "control": 2, "injection": 0, "control_frac": 1.0, "lrgs": 2, "regions": 1},
        "test": {"tasks": 0, "control": 0, "injection": 0, "control_frac": None, "lrgs": 0, "regions": 0},
    }
    out = M.manifest_counts(df)
    assert all(type(v) is int for s in out.values() for k, v in s.items() if k != "control_frac")


def test_input_record_of_a_mapping_a_file_and_s3(tmp_path, monkeypatch):
    rec = types.MappingProxyType({"uri": "b.h5", "sha256": "ab"})
    out = M._input_record("bank", rec)
    assert out == {"uri": "b.h5", "sha256": "ab"} and type(out) is dict
    data = bytes(range(256)) * (3 * 4096 + 17)  # 3 MiB and a bit: several 1 MiB blocks
    f = tmp_path / "lrg.parquet"
    f.write_bytes(data)
    assert M._input_record("lrg", str(f)) == {"uri": str(f), "sha256": hashlib.sha256(data).hexdigest()}
    assert M._input_record("lrg", f) == {"uri": str(f), "sha256": hashlib.sha256(data).hexdigest()}
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert M._input_record("x", str(empty))["sha256"] == hashlib.sha256(b"").hexdigest()
    for bad in (tmp_path / "missing", tmp_path):
        with pytest.raises(InputError) as err:
            M._input_record("lrg", str(bad))
        assert (err.value.source, err.value.problem) == (str(bad), "input 'lrg' is not a file (cannot checksum it)")
    seen = []
    monkeypatch.setattr(M.storage, "read_bytes", lambda uri: seen.append(uri) or b"s3 bytes")
    assert M._input_record("bank", "s3://bucket/bank.h5") == {
        "uri": "s3://bucket/bank.h5", "sha256": hashlib.sha256(b"s3 bytes").hexdigest()}
    assert seen == ["s3://bucket/bank.h5"]


@pytest.fixture(scope="module")
def small():
    cfg = RunConfig(seed=5, experiment_id="w", region_size_deg=0.2, replicates=2)
    lrg = lrg_table(n=50)
    return cfg, lrg, M.build_manifest(lrg, cfg, BANK)


def test_write_manifest_files_by_hand(tmp_path, small):
    cfg, lrg, df = small
    f = tmp_path / "lrg.bin"
    f.write_bytes(b"abc")
    out = tmp_path / "out"
    doc = M.write_manifest(df, str(out), cfg, {"lrg": str(f), "bank": {"uri": "b", "sha256": "00"}})
    text = (out / "manifest.json").read_text()
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    assert list(doc["inputs"]) == ["bank", "lrg"]
    assert doc["inputs"]["lrg"] == {"uri": str(f), "sha256": hashlib.sha256(b"abc").hexdigest()}
    assert doc["format"] == "dhs-manifest" and doc["format_version"] == 1
    assert doc["n_tasks"] == len(df) and doc["caustic_radius_factor"] == 0.8
    assert doc["columns"] == list(M.MANIFEST_COLUMNS)
    assert doc["config"] == cfg.to_dict()
    # counts per split from the table itself
    for split in SPLITS:
        part = df[df["region_split"] == split]
        assert doc["tasks_per_split"][split]["tasks"] == len(part)
        assert doc["tasks_per_split"][split]["control"] == int(part["is_control"].sum())
    from pipeline.task_identity import manifest_identity

    assert doc["identity"] == manifest_identity(df["task_id"], df["lrg_id"], df["region_split"], df["is_control"])
    pf = pq.ParquetFile(out / "manifest.parquet")
    assert pf.schema_arrow.names == list(M.MANIFEST_COLUMNS)  # no index column
    assert {pf.metadata.row_group(0).column(i).compression for i in range(pf.metadata.num_columns)} == {"ZSTD"}
    back = pq.read_table(out / "manifest.parquet").to_pandas()
    pd.testing.assert_frame_equal(back, df.reset_index(drop=True), check_dtype=False)
    # extra columns, the input's column order and its index (here not a RangeIndex) do not reach the file
    part = df[df["is_control"]]
    assert not isinstance(part.index, pd.RangeIndex)
    M.write_manifest(part.assign(extra=1)[list(reversed(df.columns)) + ["extra"]], str(out), cfg, {})
    assert pq.ParquetFile(out / "manifest.parquet").schema_arrow.names == list(M.MANIFEST_COLUMNS)
    back = pq.read_table(out / "manifest.parquet").to_pandas()
    assert back.index.tolist() == list(range(len(part))) and back["task_id"].tolist() == part["task_id"].tolist()
    # an input that is no file is named in the refusal
    with pytest.raises(InputError) as err:
        M.write_manifest(df, str(out), cfg, {"bank": {"uri": "b"}, "lrg": str(tmp_path / "gone.parquet")})
    assert err.value.problem == "input 'lrg' is not a file (cannot checksum it)"


def test_write_manifest_refuses_missing_columns(tmp_path, small):
    cfg, _, df = small
    with pytest.raises(InputError) as err:
        M.write_manifest(df.drop(columns=["src_rz", "task_id"]), str(tmp_path), cfg, {})
    assert (err.value.source, err.value.problem) == ("manifest", "lacks column(s) ['task_id', 'src_rz']")
    assert not (tmp_path / "manifest.parquet").exists()


def test_task_count_reads_n_tasks_and_names_every_problem(tmp_path):
    d = tmp_path / "m"
    d.mkdir()
    js = d / "manifest.json"
    js.write_text(json.dumps({"n_tasks": 42}))
    assert M.task_count(str(d)) == 42
    js.write_text(json.dumps({"n_tasks": 0}))
    assert M.task_count(d) == 0

    def problem(src="manifest_uri", **kw):
        with pytest.raises(InputError) as err:
            M.task_count(str(d), **kw)
        assert err.value.source == src
        return err.value.problem

    for bad in (-1, True, 2.0, "3", None):
        js.write_text(json.dumps({"n_tasks": bad}))
        assert problem() == f"{js}: n_tasks must be a non-negative integer"
    js.write_text("{not json")
    assert problem() == f"{js} is not a readable manifest.json (JSONDecodeError)"
    js.write_text(json.dumps({"tasks": 3}))
    assert problem("--manifest", source="--manifest") == f"{js} is not a readable manifest.json (KeyError)"
    js.write_text(json.dumps([1, 2]))
    assert problem() == f"{js} is not a readable manifest.json (TypeError)"
    js.unlink()
    js.mkdir()  # exists, but is no file
    assert problem() == f"{js} cannot be read"
    with pytest.raises(InputError) as err:
        M.task_count(str(tmp_path / "none"), source="--manifest")
    assert (err.value.source, err.value.problem) == (
        "--manifest", f"no manifest.json under {tmp_path / 'none'} (make one with `dhs manifest`)")


def test_manifest_parquet_uri_by_hand(tmp_path):
    assert M.manifest_parquet_uri("s3://b/run/m") == "s3://b/run/m/manifest.parquet"
    assert M.manifest_parquet_uri("s3://b/run/m/") == "s3://b/run/m/manifest.parquet"
    assert M.manifest_parquet_uri("s3://b/x.parquet") == "s3://b/x.parquet"
    assert M.manifest_parquet_uri(tmp_path) == str(tmp_path / "manifest.parquet")
    assert M.manifest_parquet_uri(str(tmp_path / "t.parquet")) == str(tmp_path / "t.parquet")


def test_read_manifest_names_the_file_and_column_of_every_problem(tmp_path, small):
    cfg, _, df = small
    d = tmp_path / "m"
    M.write_manifest(df, str(d), cfg, {})
    path = d / "manifest.parquet"
    pd.testing.assert_frame_equal(M.read_manifest(str(path)), df, check_dtype=False)

    def err_of(frame=None, raw=None):
        if raw is not None:
            path.write_bytes(raw)
        else:
            frame.to_parquet(path)
        with pytest.raises(InputError) as err:
            M.read_manifest(str(d))
        return err.value.source, err.value.problem

    src, prob = err_of(raw=b"PAR1 nonsense")
    assert src == str(path) and prob.startswith("not a Parquet manifest (")
    assert err_of(df.drop(columns=["lens_e2", "src_gr"])) == (
        f"{path}: lens_e2", "manifest lacks column(s) ['lens_e2', 'src_gr']")
    assert err_of(df.iloc[:0]) == (str(path), "manifest has no tasks")
    dup = pd.concat([df.iloc[:4], df.iloc[[2, 1, 2]]])
    assert err_of(dup) == (f"{path}: task_id", f"not unique: 3 duplicate(s), e.g. {df['task_id'].iloc[2]!r}")
    na = df.iloc[:3].copy()
    na.loc[na.index[1], "task_id"] = None
    assert err_of(na) == (f"{path}: task_id", "missing value(s)")
    bad = df.iloc[:4].copy()
    bad["region_split"] = ["train", "dev", "holdout", "dev"]
    assert err_of(bad) == (f"{path}: region_split",
                           "unknown split(s) ['dev', 'holdout']; allowed ['train', 'val', 'test']")
