"""Summarise a mutmut run (`make mutate`): killed / total per module and every survivor with its
diff, written to mutation_report.md (and printed). Reads `mutmut results --all true`.

`python scripts/mutation_report.py [out.md] [module-prefix or mutant name ...]`: with prefixes
(e.g. `pipeline.pixels`, or make mutate's `MUTANTS='pipeline.pixels*'`) only those modules are
reported (a one-module run leaves every other module "not checked"). Diffs come from mutmut's own
`get_diff_for_mutant` in this process (one `mutmut show` per survivor took ~10 s each on a loaded
2-core VM); `mutmut show` is the fallback.

`python ../scripts/mutation_report.py --plant TESTFILE [-k EXPR] NAME ...`, run inside `mutants/`
after a run: plants each named mutant in turn with mutmut's own switch (`MUTANT_UNDER_TEST`, read
by the trampolines on every call) and runs `pytest -x TESTFILE` on it in this one process (no
re-collection, no new stats run; a control run with no mutant first, PLANT_TIMEOUT_S per mutant), printing
`killed` / `survived` / `timeout` per name.
How newly written tests were checked against a run's survivors (docs/mutation_testing.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

MUTMUT = str(Path(sys.executable).with_name("mutmut"))


def _diff(name: str) -> str:
    try:
        from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant  # noqa: PLC0415

        return get_diff_for_mutant(name, path=find_mutant(name).path).strip()
    except Exception:  # noqa: BLE001 - another mutmut version: ask its CLI
        return subprocess.run([MUTMUT, "show", name], capture_output=True, text=True).stdout.strip()


def main(out: str = "mutation_report.md", *prefixes: str) -> int:
    text = subprocess.run([MUTMUT, "results", "--all", "true"], capture_output=True, text=True, check=True).stdout
    by_module: dict[str, Counter] = defaultdict(Counter)
    survivors: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*(\S+): (\S.*)$", line)
        if not m:
            continue
        name, status = m.group(1), m.group(2).strip()
        module = re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]
        if prefixes and not any(module.startswith(p.rstrip("*")) or p.startswith(module + ".") for p in prefixes):
            continue
        by_module[module][status] += 1
        if status in ("survived", "no tests", "suspicious", "timeout"):
            survivors.append(name)
    lines = ["# Mutation testing report (`make mutate`)", "",
             "| module | killed | total | score | other |", "|---|---|---|---|---|"]
    for module, c in sorted(by_module.items()):
        total = sum(v for k, v in c.items() if k not in ("skipped", "not checked"))
        killed = c["killed"] + c.get("caught by type check", 0)
        other = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k != "killed")
        score = f"{100 * killed / total:.1f}%" if total else "-"
        lines.append(f"| {module} | {killed} | {total} | {score} | {other} |")
    lines += ["", f"## Survivors ({len(survivors)})", ""]
    for name in survivors:
        diff = _diff(name)
        lines += [f"### {name}", "", "```diff", diff, "```", ""]
    Path(out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:4 + len(by_module)]))
    print(f"{len(survivors)} survivors; report: {out}")
    return 0


#: Seconds one planted mutant's test run may take before it is reported as a timeout. Generous:
#: on a loaded 2-core VM the first run (numba, lenstronomy imports) alone took over 60 s.
PLANT_TIMEOUT_S = 900


def plant(testfile: str, *args: str) -> int:
    """Run `testfile` against each named mutant (see the module docstring); 0 if all are killed.

    A control run with no mutant planted comes first (it also pays the imports): if the tests fail
    without a mutant, every "killed" would be false, so planting stops there. A run past
    PLANT_TIMEOUT_S is reported as `timeout`, never as `killed` (an alarm that fired during an
    import once reported mutants as killed that were not)."""
    import os  # noqa: PLC0415
    import signal  # noqa: PLC0415

    import pytest  # noqa: PLC0415

    extra, names = [], list(args)
    if names[:1] == ["-k"]:
        extra, names = ["-k", names[1]], names[2:]

    def alarm(*_):
        raise TimeoutError(f"mutant ran past {PLANT_TIMEOUT_S} s")

    def run(name: str):
        os.environ["MUTANT_UNDER_TEST"] = name
        signal.alarm(PLANT_TIMEOUT_S)
        try:
            return pytest.main([testfile, "-x", "-q", "--tb=native", "-p", "no:cacheprovider", "-o", "addopts=",
                                *extra])
        except TimeoutError:
            return "timeout"
        finally:
            signal.alarm(0)

    signal.signal(signal.SIGALRM, alarm)
    control = run("none")  # mutmut's trampolines run the original code for a name that is no mutant
    print(f"RESULT control (no mutant) {'passed' if control == 0 else 'FAILED'} ({control})", flush=True)
    if control != 0:
        print(f"{testfile} fails with no mutant planted: no verdict is possible", file=sys.stderr)
        return 2
    counts = {"killed": 0, "survived": 0, "timeout": 0}
    for name in names:
        rc = run(name)
        verdict = "timeout" if rc == "timeout" else ("survived" if rc == 0 else "killed")
        counts[verdict] += 1
        print(f"RESULT {name} {verdict} ({rc})", flush=True)
    os.environ.pop("MUTANT_UNDER_TEST", None)
    print(f"RESULT total {counts}", flush=True)
    return 1 if counts["survived"] or counts["timeout"] else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--plant"]:
        sys.exit(plant(*sys.argv[2:]))
    sys.exit(main(*sys.argv[1:]))
