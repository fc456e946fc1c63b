"""What a user sees, in a real browser (issue 9): the Airflow UI, the trigger form, the run, the
gate task's Data Docs and report links, and the pages they open.

A real Airflow (`airflow standalone`: api-server, scheduler with LocalExecutor, dag-processor,
triggerer; SQLite) runs on a free loopback port with the project's dags/ and plugins/; headless
Chromium from Debian's packages (/usr/bin/chromium, installed by `make browser`, never downloaded
by Playwright) logs in with the password the simple auth manager generated, fills the production
DAG's trigger form (backend local, variant demo, the tiny survey of tests/airflow_fixtures.py),
triggers it, waits for success, opens the gate task's Details tab (where Airflow 3 draws extra
links) and follows its "Data Docs" and "Gate report" links (served by the plugin's /dhs-docs app,
behind Airflow's login), and checks that the pages render offline: the GX index, styled, with its
table of validation results drawn by the shipped (not CDN) scripts, a validation result, the
report with its plots, stamps and seed review questions; that no page under /dhs-docs asks for
anything from another origin; and that the same Data Docs URL without the login is refused.
Every step's screenshot lands in test-artifacts/browser/ (gitignored; paths printed), with the
time each phase took.

It skips only when Chromium is absent and cannot be installed (not root, or apt-get failed).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from urllib.parse import quote, urljoin
from pathlib import Path

import pytest

from tests.airflow_fixtures import AIRFLOW_BIN, PIPELINE_DAG, base_env

pytest_plugins = ["tests.airflow_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.slow, pytest.mark.spark]

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DHS_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
#: On this closed network Chromium must not try to reach Google's services (it would stall). The
#: resolver rule makes the browser offline whatever the machine's network: no host name resolves
#: (Airflow is reached by its loopback IP), so the pages must render from this origin alone.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
#: Seconds; generous because CI shares 2 cores with Spark (a loaded machine makes the SPA slow).
UI_TIMEOUT_MS = 120_000
VIEWPORT = {"width": 1400, "height": 950}
START_TIMEOUT_S = 420
RUN_TIMEOUT_S = 1200


def chromium_or_skip() -> str:
    """The Chromium binary; installs Debian's package when missing and we are root."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    why = f"{CHROMIUM} is missing"
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run("apt-get install -y -qq chromium || (apt-get update -qq && apt-get install -y -qq chromium)",
                              shell=True, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode == 0 and os.access(CHROMIUM, os.X_OK):
            return CHROMIUM
        why += f" and `apt-get install chromium` failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
    else:
        why += " and cannot be installed here (not root or no apt-get): run `sudo apt-get install -y chromium`"
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status == 200
    except OSError:
        return False


class Standalone:
    """`airflow standalone` in its own process group, stopped (the whole group) at the end."""

    def __init__(self, home: Path, out_root: Path):
        self.home, self.out_root = home, out_root
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **base_env(home, out_root),
            # standalone starts its components as `airflow ...` from PATH: this venv's
            "PATH": os.pathsep.join([str(Path(AIRFLOW_BIN).parent), os.environ.get("PATH", "")]),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__WORKERS": "1",
            # the task runner reports to the API server's execution API: it must be this port
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            "AIRFLOW__CORE__PARALLELISM": "4",  # LocalExecutor forks this many workers
            # a loaded CI machine answers the execution API slower than the default 5 s
            "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
            "AIRFLOW__API__BASE_URL": self.base,
        }
        self.log = home / "standalone.log"
        self.proc = None
        self.start_seconds = None

    def start(self):
        t0 = time.time()
        self.proc = subprocess.Popen([AIRFLOW_BIN, "standalone"], env=self.env, cwd=self.out_root,
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + START_TIMEOUT_S
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"airflow standalone exited ({self.proc.returncode}):\n{self.log_tail()}")
            if self.password() and _http_ok(f"{self.base}/api/v2/monitor/health") and self._dag_parsed():
                self.start_seconds = time.time() - t0
                return
            time.sleep(3)
        raise AssertionError(f"Airflow not ready after {START_TIMEOUT_S} s:\n{self.log_tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = os.getpgid(self.proc.pid)
        os.killpg(pgid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:  # stragglers of our own group (scheduler workers, serve-logs)
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def password(self) -> str | None:
        f = self.home / "simple_auth_manager_passwords.json.generated"
        try:
            return json.loads(f.read_text()).get("admin")
        except (OSError, ValueError):
            return None

    def query(self, sql, args=()):
        import sqlite3

        with sqlite3.connect(self.home / "airflow.db", timeout=30) as con:
            return con.execute(sql, args).fetchall()

    def _dag_parsed(self) -> bool:
        try:
            return bool(self.query("SELECT 1 FROM dag WHERE dag_id = ?", (PIPELINE_DAG,)))
        except Exception:  # noqa: BLE001 - the DB is being created
            return False

    def extra_links(self, run_id: str, task_id: str) -> dict | str:
        """The REST API's extra links of one task instance (what the UI renders), for diagnostics."""
        try:
            req = urllib.request.Request(f"{self.base}/auth/token", method="POST",
                                         data=json.dumps({"username": "admin", "password": self.password()}).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=30) as r:
                token = json.load(r)["access_token"]
            req = urllib.request.Request(
                f"{self.base}/api/v2/dags/{PIPELINE_DAG}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/links",
                headers={"Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.load(r)
        except (OSError, ValueError, KeyError) as exc:
            return f"(the links API failed: {exc})"

    def task_durations(self, run_id: str) -> dict[str, float]:
        return {t: round(d, 1) for t, d in self.query(
            "SELECT task_id, duration FROM task_instance WHERE run_id = ? AND duration IS NOT NULL ORDER BY start_date",
            (run_id,))}

    def log_tail(self, n=60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def task_log_tail(self, run_id: str, n=40) -> str:
        out = []
        for f in sorted(self.home.glob(f"logs/dag_id={PIPELINE_DAG}/run_id={run_id}/task_id=*/*.log")):
            lines = f.read_text(errors="replace").splitlines()
            if any('"level":"error"' in line or "ERROR" in line for line in lines):
                out.append(f"--- {f}\n" + "\n".join(lines[-n:]))
        return "\n".join(out) or "(no failing task log)"


@pytest.fixture(scope="module")
def airflow_ui(tmp_path_factory):
    chromium = chromium_or_skip()
    home = tmp_path_factory.mktemp("browser_airflow_home")
    out_root = tmp_path_factory.mktemp("browser_out").resolve()
    server = Standalone(home, out_root)
    try:
        server.start()
        print(f"\nairflow standalone ready on {server.base} in {server.start_seconds:.0f} s")
        yield server, chromium
    finally:
        server.stop()


class Shots:
    """Numbered screenshots of each step in test-artifacts/browser/ (the previous run's removed)."""

    def __init__(self):
        self.paths = []
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for old in ARTIFACTS.glob("*.png"):
            old.unlink()

    def __call__(self, name: str, target, *, full_page=False):
        """`target`: a page (viewport or full page) or a locator (that element)."""
        path = ARTIFACTS / f"{len(self.paths) + 1:02d}_{name}.png"
        extra = {"full_page": full_page} if hasattr(target, "goto") else {}
        target.screenshot(path=str(path), timeout=UI_TIMEOUT_MS, **extra)
        self.paths.append(path)
        print(f"screenshot: {path}")
        return path


def _form_shots(page, dialog, shot):
    """The filled trigger form, readable. The dialog grows with its ~25 fields and the page scrolls
    it, so a viewport of a normal height shows a third of it: make the viewport as tall as the
    dialog and shoot the whole form, every field with its value."""
    # filling the fields scrolled the dialog's container: back to its top, or the top is cut off
    dialog.evaluate("el => { for (let p = el; p; p = p.parentElement) p.scrollTop = 0; }")
    box = dialog.bounding_box()
    page.set_viewport_size({"width": VIEWPORT["width"], "height": min(int(box["y"] + box["height"]) + 40, 4000)})
    try:
        dialog.get_by_text("Dataset variant").first.wait_for()
        shot("trigger_form", dialog)
    finally:
        page.set_viewport_size(VIEWPORT)


def _follow(ctx, page, link):
    """Click an extra link as a user would; returns the page showing its target (a new tab when the
    link opens one)."""
    if (link.get_attribute("target") or "") == "_blank":
        with ctx.expect_page(timeout=UI_TIMEOUT_MS) as new:
            link.click()
        target = new.value
    else:
        link.click()
        target = page
    target.set_default_timeout(UI_TIMEOUT_MS)
    target.wait_for_load_state("load")
    return target


def _images_loaded(page) -> list[dict]:
    """Every <img> with its natural width once loaded (0 = broken)."""
    page.wait_for_function("Array.from(document.images).every(i => i.complete)", timeout=UI_TIMEOUT_MS)
    return page.eval_on_selector_all("img", "els => els.map(e => ({src: e.getAttribute('src'), w: e.naturalWidth}))")


class Phases:
    """Wall time of each phase of the test, printed at the end (a loaded CI machine is slow: these
    figures say where the time went; nothing asserts on them)."""

    def __init__(self):
        self.last = time.time()
        self.rows = []

    def __call__(self, name: str):
        now = time.time()
        self.rows.append((name, now - self.last))
        self.last = now

    def table(self) -> str:
        return "\n".join(f"  {s:7.1f} s  {n}" for n, s in self.rows) + f"\n  {sum(s for _, s in self.rows):7.1f} s  total"


def _gate_links_docs_and_report(ctx, page, server, run_id, shot, phase):
    """Steps 5-7 of the test, from the successful run's page (`page` shows it)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    # 5. the gate task and its extra links. Airflow 3's UI lists a task's extra links only on the
    # task instance's Details tab ("Extra Links"), as anchors to what the API's /links resolved
    # from the gate's XCom; a link without a URL is not drawn at all. The run page also links each
    # task's overview (/dags/<dag>/tasks/gate): the task instance is the one under /runs/.
    page.locator("a[href*='/runs/'][href$='/tasks/gate']").filter(has_text="gate").first.click()
    page.wait_for_url(lambda u: u.endswith("/tasks/gate"))
    page.locator("a[href$='/tasks/gate/details']").filter(has_text="Details").click()
    page.wait_for_url(lambda u: u.endswith("/tasks/gate/details"))
    docs_link = page.get_by_role("link", name="Data Docs", exact=True)
    report_link = page.get_by_role("link", name="Gate report", exact=True)
    try:
        docs_link.wait_for()
        report_link.wait_for()
    except PlaywrightTimeout:
        raise AssertionError(f"the gate task's Details tab shows no Data Docs / Gate report link; "
                             f"the API's extra links: {server.extra_links(run_id, 'gate')}") from None
    docs_href, report_href = docs_link.get_attribute("href"), report_link.get_attribute("href")
    assert docs_href.startswith("/dhs-docs/") and docs_href.endswith("/data_docs/index.html"), docs_href
    assert report_href.startswith("/dhs-docs/") and report_href.endswith("/report/index.html"), report_href
    page.get_by_text("Extra Links", exact=True).first.scroll_into_view_if_needed()
    shot("gate_task_links", page)
    phase("run and gate task pages")

    # 6. the Data Docs, opened from the link as a user would, on this closed network: GX's index
    # draws its table of validation results with jQuery/bootstrap-table, which the gate ships with
    # the docs (pipeline/gate/data_docs.py), so the table and the styles are there offline.
    docs = _follow(ctx, page, docs_link)
    docs.get_by_text("Data Docs autogenerated using").first.wait_for()
    # bootstrap-table draws one clickable row per validation result (GX's row click handler)
    row_selector = "div.bootstrap-table table tbody tr.clickable-row[data-href^='validations/']"
    docs.locator(row_selector).first.wait_for()
    rows = sorted(set(docs.eval_on_selector_all(row_selector, "els => els.map(e => e.getAttribute('data-href'))")))
    suites = sorted({r.split("/")[1] for r in rows})
    assert suites == ["dhs_gate_demo_dataset", "dhs_gate_demo_split"], rows
    # Bootstrap's stylesheet is applied (its font stack on the body, its button style)
    assert "apple-system" in docs.evaluate("getComputedStyle(document.body).fontFamily")
    assert docs.evaluate("getComputedStyle(document.querySelector('.btn')).borderRadius") not in ("", "0px")
    index_url = docs.url
    for row in rows:
        r = docs.request.get(urljoin(index_url, row))
        assert r.ok, f"{row}: HTTP {r.status}"
    assert "content-security-policy" in docs.request.get(index_url).headers
    shot("data_docs_index", docs)
    split = next(r for r in rows if r.split("/")[1] == "dhs_gate_demo_split")
    # open it as a user does, by clicking its row (GX's script, served from the site itself)
    docs.locator(f"{row_selector}[data-href='{split}'] td").nth(1).click()
    docs.wait_for_url(urljoin(index_url, split))
    docs.get_by_text("arc_snr_p50").first.wait_for()  # every expectation with its observed value
    body = re.sub(r"\s+", " ", docs.inner_text("body"))  # Font Awesome's status icon adds a space
    assert "Expectation Suite: dhs_gate_demo_split" in body and "Status: Succeeded" in body, body[:1500]
    shot("data_docs_validation", docs)
    phase("Data Docs")

    # 7. the report, from the gate task's second link: plots loaded, seed questions, stamps
    if docs is page:
        page.go_back(wait_until="load")
        page.go_back(wait_until="load")
        report_link = page.get_by_role("link", name="Gate report", exact=True)
    report = _follow(ctx, page, report_link)
    report.get_by_text("Seed review questions").first.wait_for()
    imgs = _images_loaded(report)
    plots = [i for i in imgs if not (i["src"] or "").startswith("stamp_")]
    stamps = [i for i in imgs if (i["src"] or "").startswith("stamp_")]
    assert len(plots) >= 8 and all(i["w"] > 0 for i in plots), plots
    assert stamps and all(i["w"] > 0 for i in stamps), stamps
    assert "Gate PASSED" in report.inner_text("body")
    for qid in ("Q1", "Q2", "Q3", "Q4", "Q6", "Q8", "Q9", "Q10", "Q16", "Q19"):
        assert report.locator(f"table.seed td b:text-is('{qid}')").count() == 1, qid
    shot("report", report, full_page=True)
    shot("report_seed_questions", report.locator("table.seed"))
    phase("report")

    # 8. the same Data Docs without the login: refused (Airflow mounts plugin apps without auth;
    # /dhs-docs checks the token itself)
    for url in (index_url, urljoin(index_url, "../report/index.html")):
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                raise AssertionError(f"anonymous GET {url} answered {r.status}")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401, (url, exc.code)


def test_trigger_run_and_read_data_docs_in_browser(airflow_ui, tiny_inputs):
    from playwright.sync_api import sync_playwright

    server, chromium = airflow_ui
    phase = Phases()
    phase.rows.append(("airflow standalone start (fixture)", server.start_seconds))
    dataset = server.out_root / "dataset"
    form = {
        "variant": "demo", "run_config": "demo", "gate_suite": "demo",
        "manifest_uri": str(tiny_inputs["manifest"]), "coadd_cache_prefix": str(tiny_inputs["coadd"]),
        "cosmos_bank_h5": str(tiny_inputs["bank"]), "output_prefix": str(dataset),
        "local_master": "local[2]", "target_file_mb": "16",
    }
    shot = Shots()
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(server.home / "chromium-profile"), executable_path=chromium, headless=True,
            args=[a for a in CHROMIUM_ARGS if a != "--headless"],  # Playwright adds its own headless flag
            viewport=VIEWPORT)
        # every request a /dhs-docs page makes to anywhere but this server (none may: CSP 'self')
        foreign = []

        def _record(request):
            try:
                frame_url = request.frame.url
            except Exception:  # noqa: BLE001 - a request of a closed frame
                frame_url = ""
            if "/dhs-docs/" in frame_url and not request.url.startswith((server.base, "data:")):
                foreign.append((frame_url, request.url))

        ctx.on("request", _record)
        try:
            page = ctx.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)

            # 1. log in with the password the simple auth manager wrote into AIRFLOW_HOME
            page.goto(server.base + "/", wait_until="load")
            page.wait_for_selector("input[name=username]")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", server.password())
            shot("login", page)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(lambda u: "/auth/login" not in u)
            phase("login")

            # 2. the production DAG, 3. its trigger form filled in
            page.goto(f"{server.base}/dags/{PIPELINE_DAG}", wait_until="load")
            page.get_by_text("local_validate").first.wait_for()
            shot("dag", page)
            page.get_by_role("button", name="Trigger Dag").click()
            dialog = page.get_by_role("dialog")
            dialog.locator("input[name=element_output_prefix]").wait_for()
            for name, value in form.items():
                field = dialog.locator(f"input[name=element_{name}]")
                if field.get_attribute("type") == "hidden":  # an enum's select: its default must be ours
                    assert field.get_attribute("value") == value, (name, field.get_attribute("value"))
                else:
                    field.fill(value)
            assert dialog.locator("input[name=element_backend]").get_attribute("value") == "local"
            _form_shots(page, dialog, shot)
            phase("DAG page, trigger form filled")
            before = {r[0] for r in server.query("SELECT run_id FROM dag_run WHERE dag_id = ?", (PIPELINE_DAG,))}
            dialog.get_by_role("button", name="Trigger", exact=True).click()

            # 4. the run: wait for it in the metadata DB, then look at it in the UI
            run_id, state, conf = None, None, {}
            deadline = time.time() + RUN_TIMEOUT_S
            while time.time() < deadline:
                rows = [r for r in server.query("SELECT run_id, state, conf FROM dag_run WHERE dag_id = ? ORDER BY id",
                                                (PIPELINE_DAG,)) if r[0] not in before]
                if rows:
                    run_id, state, conf = rows[-1]
                    if state in ("success", "failed"):
                        break
                time.sleep(3)
            assert run_id, "clicking Trigger made no DAG run"
            conf = json.loads(conf) if isinstance(conf, str) else conf
            assert conf["backend"] == "local" and conf["output_prefix"] == str(dataset), conf
            assert conf["manifest_uri"] == form["manifest_uri"], "the form's values reached the run"
            tasks = dict(server.query("SELECT task_id, state FROM task_instance WHERE run_id = ?", (run_id,)))
            assert state == "success", (f"run {run_id} ended {state!r}; tasks {tasks}\n"
                                        f"{server.task_log_tail(run_id)}\n--- standalone ---\n{server.log_tail()}")
            phase("DAG run (trigger to success)")
            print(f"\nDAG run {run_id}: task durations (s): {server.task_durations(run_id)}")

            run_url = f"{server.base}/dags/{PIPELINE_DAG}/runs/{run_id}"
            page.goto(run_url, wait_until="load")
            page.get_by_text("success").first.wait_for()
            shot("run_success", page)

            _gate_links_docs_and_report(ctx, page, server, run_id, shot, phase)
            assert not foreign, f"Data Docs pages asked other origins for: {foreign[:5]}"
        finally:
            ctx.close()
            print("\nbrowser test phases:\n" + phase.table())
            print("screenshots:\n  " + "\n  ".join(str(p) for p in shot.paths))
