"""pipeline.gate.thresholds without Spark: a suite YAML written here by hand is read into exactly
the checks it lists (defaults: scope split, why ""), every malformed suite is refused naming the
file, the check index and the problem, a check's bound reads as the YAML wrote it, and the
"at least as strict" policy is decided on bounds worked out by hand."""

from __future__ import annotations

import pytest

from pipeline.errors import InputError
from pipeline.gate.thresholds import (ENV_VAR, Check, Thresholds, check_suite_policy, load_thresholds,
                                      strictness_gaps, thresholds_path)


def _suite(tmp_path, text, name="s.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


FULL = """variant: mine
description: |
  two checks and a drift limit
checks:
  - name: ok_rate
    metric: cutout_ok_rate
    scope: dataset
    min: 0.99
    max: 1
    why: "  seed 4.2  "
  - {name: snr_max, metric: arc_snr_p50, max: 30}
drift:
  arc_snr_p50: 0.1
  theta_e_p50: 1
"""


def test_every_field_is_read_and_defaults_filled(tmp_path):
    p = _suite(tmp_path, FULL)
    th = load_thresholds(str(p))
    assert th == Thresholds("mine", "two checks and a drift limit",
                            (Check("ok_rate", "cutout_ok_rate", "dataset", 0.99, 1, "seed 4.2"),
                             Check("snr_max", "arc_snr_p50", "split", None, 30, "")),
                            {"arc_snr_p50": 0.1, "theta_e_p50": 1.0}, str(p))
    assert isinstance(th.drift["theta_e_p50"], float)


def test_variant_defaults_to_the_file_name_and_yml_is_accepted(tmp_path):
    p = _suite(tmp_path, "checks:\n  - {name: a, metric: m, min: 0}\n", "lenient.yml")
    th = load_thresholds(str(p))
    assert (th.variant, th.description, th.drift, th.checks[0].scope) == ("lenient", "", {}, "split")
    assert thresholds_path(str(p)) == p


def test_a_variant_name_is_looked_up_in_the_env_dir(tmp_path, monkeypatch):
    _suite(tmp_path, FULL, "custom.yaml")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert load_thresholds("custom").variant == "mine"
    assert thresholds_path("custom") == tmp_path / "custom.yaml"


@pytest.mark.parametrize("text, index, problem", [
    ("checks:\n  - just a string\n", 0, "each check needs a name and a metric"),
    ("checks:\n  - {metric: m, min: 0}\n", 0, "each check needs a name and a metric"),
    ("checks:\n  - {name: a, min: 0}\n", 0, "each check needs a name and a metric"),
    ("checks:\n  - {name: a, metric: m, min: 0}\n  - {name: b, metric: m}\n", 1, "check 'b' needs min and/or max"),
    ("checks:\n  - {name: a, metric: m, min: 0, max: null}\n  - {name: b, metric: m, min: 1, scope: row}\n", 1,
     "scope must be 'split' or 'dataset'"),
    ("checks:\n  - {name: a, metric: m, min: 0}\n  - {name: a, metric: n, max: 1}\n", 1, "duplicate check name 'a'"),
])
def test_malformed_checks_are_refused_naming_file_index_and_problem(tmp_path, text, index, problem):
    p = _suite(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_thresholds(str(p))
    assert e.value.source == f"{p}: checks[{index}]"
    assert e.value.problem == problem


@pytest.mark.parametrize("text", ["", "checks: []\n", "variant: x\n"])
def test_a_suite_without_checks_is_refused(tmp_path, text):
    p = _suite(tmp_path, text)
    with pytest.raises(InputError) as e:
        load_thresholds(str(p))
    assert (e.value.source, e.value.problem) == (str(p), "no checks")


def test_invalid_yaml_is_refused_naming_the_file(tmp_path):
    p = _suite(tmp_path, "checks: [unclosed\n")
    with pytest.raises(InputError) as e:
        load_thresholds(str(p))
    assert e.value.source == str(p) and e.value.problem.startswith("not valid YAML: ")


def test_only_yaml_suffixes_are_paths(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(InputError) as e:
        thresholds_path(str(tmp_path / "absent.yml"))
    assert (e.value.source, e.value.problem) == (f"--variant {tmp_path / 'absent.yml'}",
                                                 f"no such thresholds file {tmp_path / 'absent.yml'}")
    # an upper-case suffix is not a path: it is looked up as a variant name (and not found)
    with pytest.raises(InputError) as e:
        thresholds_path("demo.YAML")
    assert e.value.problem.startswith("no demo.YAML.yaml in ")


def test_a_missing_env_dir_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(InputError) as e:
        thresholds_path("demo")
    assert (e.value.source, e.value.problem) == (f"${ENV_VAR}={tmp_path / 'nope'}",
                                                 "not a directory (it should hold the suites <variant>.yaml)")


def test_unknown_variant_lists_the_places_and_known_variants(tmp_path, monkeypatch):
    _suite(tmp_path, FULL, "b.yaml")
    _suite(tmp_path, FULL, "a.yaml")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(InputError) as e:
        thresholds_path("zzz")
    assert e.value.source == "--variant zzz"
    assert e.value.problem.startswith(f"no zzz.yaml in {tmp_path}, ")
    known = e.value.problem.split("known variants: ")[1]
    assert known.startswith("a, b, ") and known.endswith(f"; set ${ENV_VAR} to the suites folder)")


def test_expected_reads_as_the_bounds():
    assert Check("c", "m", min=0.5).expected() == ">= 0.5"
    assert Check("c", "m", max=30).expected() == "<= 30"
    assert Check("c", "m", min=0.25, max=2).expected() == "in [0.25, 2]"
    assert Check("c", "m", min=1, max=1).expected() == "1 (exact)"
    assert Check("c", "m", min=0, max=0).expected() == "0 (exact)"
    assert Check("c", "m", min=0, max=1e-7).expected() == "in [0, 1e-07]"


def _th(name, *checks, drift=None):
    return Thresholds(name, "", tuple(checks), drift or {})


MIN = _th("minimum", Check("rate", "ok_rate", "split", 0.9, None), Check("snr", "snr", "dataset", 1, 10),
          drift={"snr": 0.2})


@pytest.mark.parametrize("suite_checks, drift, gaps", [
    # as strict: equal bounds, and tighter ones
    ([Check("r", "ok_rate", "split", 0.9, None), Check("s", "snr", "dataset", 1, 10)], {"snr": 0.2}, []),
    ([Check("r", "ok_rate", "split", 0.95, 1), Check("s", "snr", "dataset", 2, 9)], {"snr": 0.1, "x": 5}, []),
    # looser lower bound on ok_rate; missing upper bound on snr; drift looser
    ([Check("r", "ok_rate", "split", 0.8, None), Check("s", "snr", "dataset", 1, None)], {"snr": 0.3},
     ["rate (ok_rate, split) must be >= 0.9; mine has: r >= 0.8",
      "snr (snr, dataset) must be in [1, 10]; mine has: s >= 1",
      "drift snr must be <= 0.2; mine has 0.3"]),
    # right metric, wrong scope; no lower bound at all; no drift limit
    ([Check("r", "ok_rate", "dataset", 0.95, None), Check("s", "snr", "dataset", None, 10)], {},
     ["rate (ok_rate, split) must be >= 0.9; mine has: no such check",
      "snr (snr, dataset) must be in [1, 10]; mine has: s <= 10",
      "drift snr must be <= 0.2; mine has no limit"]),
    # the upper bound too high; one of two candidate checks suffices
    ([Check("r1", "ok_rate", "split", 0.5, None), Check("r2", "ok_rate", "split", 0.91, None),
      Check("s", "snr", "dataset", 1, 11)], {"snr": 0.2},
     ["snr (snr, dataset) must be in [1, 10]; mine has: s in [1, 11]"]),
])
def test_strictness_gaps_by_hand(suite_checks, drift, gaps):
    assert strictness_gaps(_th("mine", *suite_checks, drift=drift), MIN) == gaps


def test_no_bound_in_the_minimum_accepts_anything():
    minimum = _th("m", Check("a", "x", "split", None, 5), Check("b", "y", "split", 3, None))
    assert strictness_gaps(_th("s", Check("a", "x", "split", -100, 5), Check("b", "y", "split", 3, 1e9)), minimum) == []


def _write(tmp_path, name, checks_yaml):
    _suite(tmp_path, f"variant: {name}\nchecks:\n{checks_yaml}", f"{name}.yaml")


def test_check_suite_policy(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    _write(tmp_path, "floor", "".join(f"  - {{name: c{i}, metric: m{i}, min: 1}}\n" for i in range(7)))
    _write(tmp_path, "strong", "".join(f"  - {{name: c{i}, metric: m{i}, min: 2}}\n" for i in range(7)))
    _write(tmp_path, "weak", "".join(f"  - {{name: c{i}, metric: m{i}, min: 0}}\n" for i in range(7)))
    _write(tmp_path, "weak1", "".join(f"  - {{name: c{i}, metric: m{i}, min: {0 if i == 3 else 1}}}\n"
                                      for i in range(7)))
    check_suite_policy("strong", "floor")
    check_suite_policy("floor", "floor")
    with pytest.raises(InputError) as e:
        check_suite_policy("weak", "floor", source="cfg.min_gate_suite")
    assert e.value.source == "cfg.min_gate_suite"
    gaps = [f"c{i} (m{i}, split) must be >= 1; weak has: c{i} >= 0" for i in range(7)]
    assert e.value.problem == ("suite 'weak' is weaker than 'floor', the weakest suite this run config may be "
                               f"promoted under (min_gate_suite): {'; '.join(gaps[:5])}; and 2 more")
    with pytest.raises(InputError) as e:
        check_suite_policy("weak1", "floor")
    assert e.value.source == "gate_suite"
    assert e.value.problem.endswith("(min_gate_suite): c3 (m3, split) must be >= 1; weak1 has: c3 >= 0")


def test_exactly_five_gaps_are_all_listed(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    _write(tmp_path, "floor", "".join(f"  - {{name: c{i}, metric: m{i}, min: 1}}\n" for i in range(7)))
    _write(tmp_path, "weak5", "".join(f"  - {{name: c{i}, metric: m{i}, min: {0 if i < 5 else 1}}}\n"
                                      for i in range(7)))
    with pytest.raises(InputError) as e:
        check_suite_policy("weak5", "floor")
    assert e.value.problem.endswith("; ".join(f"c{i} (m{i}, split) must be >= 1; weak5 has: c{i} >= 0"
                                              for i in range(5)))


def test_every_same_metric_check_is_listed_and_six_gaps_say_one_more(tmp_path, monkeypatch):
    minimum = _th("floor", Check("rate", "ok_rate", "split", 0.9, None))
    suite = _th("mine", Check("r1", "ok_rate", "split", 0.5, None), Check("r2", "ok_rate", "split", 0.6, None))
    assert strictness_gaps(suite, minimum) == ["rate (ok_rate, split) must be >= 0.9; mine has: r1 >= 0.5, r2 >= 0.6"]
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    _write(tmp_path, "floor", "".join(f"  - {{name: c{i}, metric: m{i}, min: 1}}\n" for i in range(7)))
    _write(tmp_path, "weak6", "".join(f"  - {{name: c{i}, metric: m{i}, min: {0 if i < 6 else 1}}}\n"
                                      for i in range(7)))
    with pytest.raises(InputError) as e:
        check_suite_policy("weak6", "floor")
    assert e.value.problem.endswith("c4 (m4, split) must be >= 1; weak6 has: c4 >= 0; and 1 more")


def test_no_known_variants_says_none(tmp_path, monkeypatch):
    from pipeline.gate import thresholds

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(ENV_VAR, str(empty))
    monkeypatch.setattr(thresholds, "SOURCE_DIR", empty)
    monkeypatch.setattr(thresholds, "INSTALLED_SUBDIR", tmp_path / "not-installed")
    with pytest.raises(InputError) as e:
        thresholds_path("demo")
    assert "(known variants: none; set $DHS_EXPECTATIONS_DIR to the suites folder)" in e.value.problem
