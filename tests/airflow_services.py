"""The Airflow stack of docker-compose.yaml, run as plain processes owned by the test (issue 19).

No Docker engine here, so each compose service becomes a process started and stopped by the
`airflow_services` fixture:

- `postgres`: PostgreSQL 15 from Debian's packages (`initdb` + `postgres` on a free port bound to
  127.0.0.1, its unix socket in a tmp dir), an `airflow` role with a random password and its
  database. Postgres refuses to run as root: as root it runs as the `postgres` account the
  Debian package creates (or `nobody`), through `setpriv`/`runuser`.
- `airflow-init` (`airflow db migrate`, run to completion), then `airflow-apiserver`,
  `airflow-scheduler`, `airflow-dag-processor`, `airflow-triggerer`, each with the command and the
  `x-airflow-common` environment read FROM docker-compose.yaml, so the two cannot drift.

What must differ outside containers is an explicit, small table (SERVICES, ENV_KEYS, and
`substitutions()`): container paths -> this checkout's mounted folders and a tmp data dir, compose
service host names -> 127.0.0.1:<free port>, the secrets compose requires (`${VAR:?}`) ->
generated per fixture. `compose_plan()` refuses a compose file with a service or an environment
key this table does not handle (test_airflow_production.py checks that without starting anything).

Each process runs in its own process group with its log in the fixture's folder; teardown stops
every group (SIGTERM, then SIGKILL), looks for any process left with this stack's AIRFLOW_HOME
(an orphan fails the teardown) and removes the database cluster. `services.explain()` gives the
tail of every log, for assertion messages.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import secrets as pysecrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
AIRFLOW_BIN = str(Path(sys.executable).with_name("airflow"))
PG_BINDIRS = ("/usr/local/bin", "/usr/lib/postgresql/15/bin")
#: every service's log and the task logs of the last run, kept after the tmp dirs go (gitignored)
ARTIFACTS = REPO / "test-artifacts" / "airflow_production"

# ----------------------------------------------------------------------------------------------
# The substitution table: compose -> processes on this machine. Keep it explicit and small.

#: compose service -> how it runs here
SERVICES = {
    "postgres": "database",  # PostgreSQL from Debian's packages (the image's `postgres:16` is not here)
    "airflow-init": "once",  # its command, run to completion before the others (service_completed_successfully)
    "airflow-apiserver": "server",  # its command, `--port` -> a free port, bound to the compose `ports:` host IP
    "airflow-scheduler": "server",
    "airflow-dag-processor": "server",
    "airflow-triggerer": "server",
}

#: every key of `x-airflow-common.environment` -> what changes outside containers
#:   "as is":  the compose value, unchanged
#:   "path":   container paths -> host paths (see substitutions())
#:   "url":    compose service names -> 127.0.0.1:<port>; `${VAR:?}` secrets -> generated
#:   "secret": `${VAR:?}` -> a value generated for this fixture
ENV_KEYS = {
    "AIRFLOW__CORE__EXECUTOR": "as is",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "as is",
    "AIRFLOW__CORE__DAGS_FOLDER": "path",
    "AIRFLOW__CORE__PLUGINS_FOLDER": "path",
    "AIRFLOW__CORE__AUTH_MANAGER": "as is",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "as is",
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "url",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "url",
    "AIRFLOW__API_AUTH__JWT_SECRET": "secret",
    "AIRFLOW__CORE__FERNET_KEY": "secret",
    "AIRFLOW__API__SECRET_KEY": "secret",
    "DHS_EXPECTATIONS_DIR": "path",
    "DHS_ALLOWED_OUTPUT_ROOTS": "path",
    "DHS_DOCS_ROOT": "path",
    "NUMBA_CACHE_DIR": "path",
}

def _fernet_key() -> str:
    from cryptography.fernet import Fernet  # noqa: PLC0415

    return Fernet.generate_key().decode()


#: the variables compose requires from the environment (`${VAR:?...}`) -> how this fixture makes them
SECRETS = {
    "POSTGRES_PASSWORD": lambda: pysecrets.token_hex(16),
    "AIRFLOW_JWT_SECRET": lambda: pysecrets.token_hex(64),
    "AIRFLOW_FERNET_KEY": _fernet_key,
    "AIRFLOW_API_SECRET_KEY": lambda: pysecrets.token_hex(64),
}

#: keys of the runner's own environment never passed on (a container starts without them)
_SCRUBBED_PREFIXES = ("AIRFLOW", "DHS_", "AWS_")


class ComposeDrift(AssertionError):
    """docker-compose.yaml has something this fixture does not know how to run."""


def load_compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


def interpolate(value: str, env: dict) -> str:
    """Compose's variable substitution (the same model as tests/test_security_compose.py)."""
    from tests.test_security_compose import interpolate as compose_interpolate  # noqa: PLC0415

    return compose_interpolate(value, env)


def image_workdir() -> str:
    """The image's WORKDIR, which is also its AIRFLOW_HOME (Dockerfile)."""
    text = DOCKERFILE.read_text()
    workdir = re.findall(r"^WORKDIR\s+(\S+)", text, re.M)[-1]
    home = re.search(r"\bAIRFLOW_HOME=(\S+)", text)
    if not home or home.group(1) != workdir:
        raise ComposeDrift(f"Dockerfile: AIRFLOW_HOME ({home and home.group(1)}) is not its WORKDIR ({workdir})")
    return workdir


@dataclass
class Plan:
    """What compose_plan() read: services to run and their environment, host ports, secrets."""

    env: dict
    commands: dict  # service -> argv (airflow services only, in start order)
    path_map: dict  # container path -> host path
    host_map: dict  # compose host[:port] -> 127.0.0.1:port
    secrets: dict
    api_port: int
    api_host: str
    pg_port: int
    workdir: Path
    data_dir: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitutions(compose: dict, workdir: Path, data_dir: Path) -> dict:
    """container path -> host path: compose's volume mounts (this checkout's dags/, plugins/,
    expectations/; the data mount -> `data_dir`, as DHS_DATA_DIR would), and anything else under
    the image's WORKDIR (= AIRFLOW_HOME) -> `workdir`. Longest first."""
    container_home = image_workdir()
    out = {}
    for volume in compose["x-airflow-common"]["volumes"]:
        host, container = interpolate(volume, {}).split(":")[:2]
        if container == f"{container_home}/demo_output":
            out[container] = str(data_dir)
        else:
            out[container] = str((REPO / host).resolve())
    out[container_home] = str(workdir)
    return dict(sorted(out.items(), key=lambda kv: -len(kv[0])))


def _map_paths(value: str, path_map: dict) -> str:
    for container, host in path_map.items():
        value = re.sub(rf"(?<![\w/]){re.escape(container)}(?=/|,|$)", host, value)
    return value


def _map_hosts(value: str, host_map: dict) -> str:
    for compose_host, local in host_map.items():
        value = re.sub(rf"(?<=[@/]){re.escape(compose_host)}(?=[/:]|$)", local, value)
    return value


def compose_plan(workdir: Path, data_dir: Path, *, compose: dict | None = None, pg_port: int | None = None,
                 api_port: int | None = None, secrets: dict | None = None) -> Plan:
    """Read docker-compose.yaml into processes: refuses (ComposeDrift) any service or environment
    key the table above does not handle, or a substituted value still naming a container path or
    a compose host."""
    compose = compose if compose is not None else load_compose()
    services = compose["services"]
    unknown = sorted(set(services) - set(SERVICES))
    if unknown:
        raise ComposeDrift(f"docker-compose.yaml gained service(s) {unknown}: tests/airflow_services.py SERVICES "
                           "must say how each runs without containers")
    missing = sorted(set(SERVICES) - set(services))
    if missing:
        raise ComposeDrift(f"docker-compose.yaml lost service(s) {missing}: update SERVICES")
    common = compose["x-airflow-common"]["environment"]
    unknown = sorted(set(common) - set(ENV_KEYS))
    if unknown:
        raise ComposeDrift(f"docker-compose.yaml's x-airflow-common environment gained {unknown}: "
                           "tests/airflow_services.py ENV_KEYS must say what each becomes outside containers")
    for name, kind in SERVICES.items():
        if kind != "database" and services[name].get("environment", common) != common:
            raise ComposeDrift(f"{name} has an environment other than x-airflow-common's, which the fixture uses")

    secrets = secrets or {name: make() for name, make in SECRETS.items()}
    pg_port = pg_port or free_port()
    api_port = api_port or free_port()
    path_map = substitutions(compose, workdir, data_dir)

    api = services["airflow-apiserver"]
    api_cmd = list(api["command"])
    container_port = api_cmd[api_cmd.index("--port") + 1]
    published = [str(p) for p in api.get("ports") or []]
    api_host = published[0].split(":")[0] if published and published[0].count(":") == 2 else "127.0.0.1"
    host_map = {f"airflow-apiserver:{container_port}": f"127.0.0.1:{api_port}",
                "postgres": f"127.0.0.1:{pg_port}"}

    env = {}
    for key, raw in common.items():
        value = interpolate(str(raw), secrets)  # ${VAR:?} -> generated secrets; others unset -> compose refuses
        value = _map_paths(value, path_map)
        value = _map_hosts(value, host_map)
        kind = ENV_KEYS[key]
        if kind == "as is" and value != str(raw):
            raise ComposeDrift(f"{key} is 'as is' in ENV_KEYS but its value changed outside containers: {raw!r}")
        if kind in ("path", "url") and value == str(raw):
            raise ComposeDrift(f"{key} is a {kind!r} in ENV_KEYS but names no container path or compose host: {raw!r}")
        if kind == "secret" and not re.fullmatch(r"\$\{[A-Z_]+:\?[^}]*\}", str(raw)):
            raise ComposeDrift(f"{key} is a 'secret' in ENV_KEYS but compose does not require it: {raw!r}")
        if re.search(r"(?<![\w/])/opt/", value) or any(re.search(rf"[@/]{re.escape(h.split(':')[0])}[:/]", value)
                                                      for h in host_map):
            raise ComposeDrift(f"{key}={value!r} still names a container path or a compose host")
        env[key] = value

    commands = {}
    for name, kind in SERVICES.items():
        if kind == "database":
            continue
        cmd = [str(c) for c in services[name]["command"]]
        if cmd[0] != "airflow":
            raise ComposeDrift(f"{name}: command {cmd} is not an airflow command")
        if name == "airflow-apiserver":
            cmd[cmd.index("--port") + 1] = str(api_port)
            cmd += ["--host", api_host]  # the compose `ports:` binding (127.0.0.1 only)
        commands[name] = [AIRFLOW_BIN] + cmd[1:]
    return Plan(env, commands, path_map, host_map, secrets, api_port, api_host, pg_port, workdir, data_dir)


# ----------------------------------------------------------------------------------------------
# PostgreSQL


def postgres_bin(name: str) -> str | None:
    for d in PG_BINDIRS:
        if os.access(f"{d}/{name}", os.X_OK):
            return f"{d}/{name}"
    return None


def ensure_postgres() -> None:
    """Debian's PostgreSQL: installed when missing and we are root (as the Makefile does for
    chromium), otherwise the test skips naming the command."""
    if postgres_bin("initdb") and postgres_bin("postgres"):
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        proc = subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True)
        if proc.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True)
    if not (postgres_bin("initdb") and postgres_bin("postgres")):
        pytest.skip("PostgreSQL 15 (initdb, postgres) not found in /usr/lib/postgresql/15/bin: "
                    "sudo apt-get install -y postgresql")


def _unprivileged_account() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    pytest.skip("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as: "
                "`useradd --system postgres` or run the tests as a normal user")


@dataclass
class Postgres:
    """A PostgreSQL cluster in a tmp dir, owned by this object's process."""

    port: int
    log_path: Path
    password: str
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="dhs_pg_")))
    proc: subprocess.Popen | None = None
    seconds: float = 0.0

    def __post_init__(self):
        self._as_user: list[str] = []
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0:  # "root execution of the PostgreSQL server is not permitted"
            account = _unprivileged_account()
            self.user = account.pw_name
            os.chown(self.root, account.pw_uid, account.pw_gid)
            if shutil.which("setpriv"):  # exec, no fork: the Popen pid is postgres itself
                self._as_user = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
                                 "--init-groups", "--"]
            else:
                self._as_user = ["runuser", "-u", account.pw_name, "--"]

    @property
    def socket_dir(self) -> Path:
        return self.root / "sock"

    def start(self) -> "Postgres":
        t0 = time.time()
        data = self.root / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["HOME"] = str(self.root)
        with open(self.log_path, "ab") as log:
            proc = subprocess.run(self._as_user + [postgres_bin("initdb"), "-D", str(data), "-U", self.user,
                                                   "--auth-local=trust", "--auth-host=scram-sha-256",
                                                   "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root, timeout=120)
        if proc.returncode != 0:
            raise RuntimeError(f"initdb failed (exit {proc.returncode}):\n{tail(self.log_path)}")
        os.makedirs(self.socket_dir, exist_ok=True)
        if self._as_user:
            shutil.chown(self.socket_dir, user=self.user)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the server's stdout/stderr for its lifetime
        self.proc = subprocess.Popen(
            self._as_user + [postgres_bin("postgres"), "-D", str(data), "-p", str(self.port),
                             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.socket_dir}",
                             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root, start_new_session=True)
        log.close()
        deadline = time.time() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            try:
                self.execute("SELECT 1", db="postgres", as_superuser=True)
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.time() > deadline:
                    raise RuntimeError(f"postgres did not accept connections in 60 s:\n{tail(self.log_path)}")
                time.sleep(0.3)
        # what the postgres image does with POSTGRES_USER / POSTGRES_PASSWORD / POSTGRES_DB
        self.execute(f"CREATE ROLE airflow LOGIN PASSWORD '{self.password}'", db="postgres", as_superuser=True)
        self.execute("CREATE DATABASE airflow OWNER airflow", db="postgres", as_superuser=True)
        self.seconds = time.time() - t0
        return self

    def connect(self, *, db: str = "airflow", as_superuser: bool = False):
        import psycopg2  # noqa: PLC0415

        if as_superuser:  # the unix socket, trust (local only)
            con = psycopg2.connect(host=str(self.socket_dir), port=self.port, user=self.user, dbname=db)
        else:  # what Airflow uses: TCP with the password (scram-sha-256)
            con = psycopg2.connect(host="127.0.0.1", port=self.port, user="airflow", password=self.password, dbname=db)
        con.autocommit = True
        return con

    def execute(self, sql: str, args: tuple = (), **kwargs) -> list[tuple]:
        con = self.connect(**kwargs)
        try:
            with con.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            con.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# Airflow services


def tail(path: Path, n: int = 60) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"({path}: {exc})"
    return "\n".join(lines[-n:])


@dataclass
class AirflowServices:
    plan: Plan
    logs: Path
    postgres: Postgres
    procs: dict = field(default_factory=dict)  # service -> Popen
    timings: dict = field(default_factory=dict)
    orphans: list = field(default_factory=list)
    _token: str | None = None

    @property
    def env(self) -> dict:
        return self._env

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.plan.api_port}"

    def log_path(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    # ------------------------------------------------------------------ start / stop

    def start(self, extra_env: dict) -> "AirflowServices":
        t0 = time.time()
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(_SCRUBBED_PREFIXES) and k != "PYTHONDONTWRITEBYTECODE"}
        self._env = {
            **base,
            # the image's ENV AIRFLOW_HOME (= its WORKDIR), mapped like every container path
            "AIRFLOW_HOME": str(self.plan.workdir),
            # not in the image either: bytecode caches out of the venv (fresh interpreters import Airflow)
            "PYTHONPYCACHEPREFIX": os.environ.get("PYTHONPYCACHEPREFIX", "/tmp/dhs_pycache"),
            **self.plan.env,
            **extra_env,
        }
        for d in (self.plan.workdir, self.plan.data_dir, Path(self.plan.path_map[image_workdir()]) / ".cache"):
            d.mkdir(parents=True, exist_ok=True)
        numba = Path(self._env["NUMBA_CACHE_DIR"])
        numba.mkdir(parents=True, exist_ok=True)
        numba.chmod(0o700)

        names = list(self.plan.commands)
        once = [n for n in names if SERVICES[n] == "once"]
        servers = [n for n in names if SERVICES[n] == "server"]
        for name in once:  # airflow-init: `airflow db migrate`
            t = time.time()
            with open(self.log_path(name), "wb") as log:
                proc = subprocess.run(self.plan.commands[name], env=self._env, cwd=self.plan.workdir, stdout=log,
                                      stderr=subprocess.STDOUT, timeout=600)
            self.timings[name] = time.time() - t
            if proc.returncode != 0:
                raise RuntimeError(f"{name} ({' '.join(self.plan.commands[name][1:])}) exited {proc.returncode}:\n"
                                   f"{tail(self.log_path(name))}")
        t = time.time()
        for name in servers:
            log = open(self.log_path(name), "wb")  # noqa: SIM115 - the process's for its lifetime
            self.procs[name] = subprocess.Popen(self.plan.commands[name], env=self._env, cwd=self.plan.workdir,
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
        self.wait_healthy(timeout=240)
        self.timings["services healthy"] = time.time() - t
        self.timings["stack up"] = time.time() - t0
        return self

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail(self.log_path(name))}")

    def health(self) -> dict:
        import requests  # noqa: PLC0415

        return requests.get(f"{self.api_url}/api/v2/monitor/health", timeout=5).json()

    def wait_healthy(self, timeout: float) -> dict:
        """api-server answering /api/v2/monitor/health, and the scheduler, triggerer and
        dag-processor heartbeats it reports healthy."""
        deadline = time.time() + timeout
        last = None
        while True:
            self.check_alive()
            with contextlib.suppress(Exception):
                last = self.health()
                parts = ("metadatabase", "scheduler", "triggerer", "dag_processor")
                if all((last.get(p) or {}).get("status") == "healthy" for p in parts):
                    return last
            if time.time() > deadline:
                raise RuntimeError(f"services not healthy in {timeout:.0f} s: {last}\n{self.explain()}")
            time.sleep(1)

    def _descendants(self) -> list:
        import psutil  # noqa: PLC0415

        out = []
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                out += psutil.Process(proc.pid).children(recursive=True)
        return out

    def _ours(self) -> list:
        """Every process on the machine running with this stack's AIRFLOW_HOME (tasks included)."""
        import psutil  # noqa: PLC0415

        home = str(self.plan.workdir)
        found = []
        for p in psutil.process_iter(["pid"]):
            with contextlib.suppress(psutil.Error):
                if p.pid != os.getpid() and p.environ().get("AIRFLOW_HOME") == home:
                    found.append(p)
        return found

    def stop(self, grace: float = 25) -> None:
        import psutil  # noqa: PLC0415

        t = time.time()
        children = self._descendants()
        for proc in self.procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.time() + grace
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.time()))
        for proc in self.procs.values():  # whatever ignored SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        _, alive = psutil.wait_procs(children, timeout=5)
        left = {p.pid: p for p in alive + self._ours()}
        for p in left.values():
            with contextlib.suppress(psutil.Error):
                self.orphans.append(f"{p.pid} {' '.join(p.cmdline())[:200]}")
                p.kill()
        self.timings["stop"] = time.time() - t

    # ------------------------------------------------------------------ REST API

    def password(self, user: str = "admin") -> str:
        """The simple auth manager's generated password (the api-server writes it in AIRFLOW_HOME)."""
        path = self.plan.workdir / "simple_auth_manager_passwords.json.generated"
        return json.loads(path.read_text())[user]

    def token(self) -> str:
        import requests  # noqa: PLC0415

        if self._token is None:
            users = self.plan.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
            user = users.split(",")[0].split(":")[0]
            r = requests.post(f"{self.api_url}/auth/token", json={"username": user, "password": self.password(user)},
                              timeout=30)
            assert r.status_code in (200, 201), f"/auth/token: {r.status_code} {r.text}"
            self._token = r.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, expect=(200,), **kwargs):
        import requests  # noqa: PLC0415

        r = requests.request(method, f"{self.api_url}/api/v2{path}",
                             headers={"Authorization": f"Bearer {self.token()}"}, timeout=60, **kwargs)
        assert r.status_code in expect, f"{method} {path}: {r.status_code} {r.text[:2000]}"
        return r.json() if r.content else None

    def query(self, sql: str, args: tuple = ()) -> list[tuple]:
        """The metadata database, as the `airflow` role."""
        return self.postgres.execute(sql, args)

    def explain(self, n: int = 40) -> str:
        parts = [f"--- {name} ({self.log_path(name)}) ---\n{tail(self.log_path(name), n)}"
                 for name in self.plan.commands]
        parts.append(f"--- postgres ({self.postgres.log_path}) ---\n{tail(self.postgres.log_path, 15)}")
        return "\n".join(parts)

    @contextlib.contextmanager
    def on_failure(self):
        """Print every service's log tail if the block fails."""
        try:
            yield
        except BaseException:
            print(self.explain(80))
            raise


@pytest.fixture(scope="module")
def airflow_services_env() -> dict:
    """Environment the test adds to every service (override it in the test module): what a
    deployment gets from outside compose, e.g. the AWS endpoint standing in for the instance role."""
    return {}


@pytest.fixture(scope="module")
def airflow_services(tmp_path_factory, airflow_services_env):
    """docker-compose.yaml's stack as processes: Postgres, `airflow db migrate`, then api-server,
    scheduler, dag-processor and triggerer, healthy; all stopped at teardown."""
    ensure_postgres()
    base = tmp_path_factory.mktemp("airflow_stack")
    logs = base / "logs"
    logs.mkdir()
    workdir = base / "opt_airflow"
    plan = compose_plan(workdir, workdir / "demo_output")
    pg = Postgres(plan.pg_port, logs / "postgres.log", plan.secrets["POSTGRES_PASSWORD"])
    services = AirflowServices(plan, logs, pg)
    try:
        pg.start()
        services.timings["postgres"] = pg.seconds
        services.start(airflow_services_env)
        yield services
    except BaseException:
        print(services.explain(80))
        raise
    finally:
        services.stop()
        pg.stop()
        shutil.rmtree(ARTIFACTS, ignore_errors=True)
        shutil.copytree(logs, ARTIFACTS / "services")
        if (workdir / "logs").is_dir():
            shutil.copytree(workdir / "logs", ARTIFACTS / "task_logs")
        print(f"\nairflow stack logs: {ARTIFACTS}; timings: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in services.timings.items()))
        if services.orphans:
            pytest.fail(f"processes left after the services stopped (killed now): {services.orphans}")
