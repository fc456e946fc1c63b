"""A real multi-process Spark cluster for the tests: Spark's own standalone master and two
workers, each a separate JVM started from the pinned pyspark with `spark-class` (issue 19).

    cluster = StandaloneCluster(base_dir, workers=2, worker_env={...})
    cluster.start()                     # master + workers, waits until both are registered
    cluster.master_url                  # spark://127.0.0.1:<port>, for spark-submit --master
    cluster.kill_worker("w1")           # SIGKILL the worker JVM, its executors and Python workers
    cluster.kill_executors("w2")        # only the executor JVMs (and their Python workers)
    cluster.stop()                      # everything, also after a failure; no orphan JVM

Layout under base_dir (one folder per process, nothing shared between workers):
    master/            the master's log
    w1/, w2/           a worker's log, its --work-dir (work/: executors run there, one folder per
                       application and executor), its SPARK_LOCAL_DIRS (local/: shuffle files)
                       and DHS_CACHE_DIR (cache/: where its executors download S3 inputs)
    conf/              an empty SPARK_CONF_DIR (no spark-defaults or spark-env from elsewhere)

Every process binds to 127.0.0.1 on free ports; each worker offers 1 core and 1 GB (the
machine has 2 shared cores). The master and workers run in their own sessions, so a test that
fails never takes them down with it and `stop()` can find each one's whole process tree: the
Python workers of an executor are NOT in the worker's process group (pyspark's daemon calls
setpgid), so processes are found by the tree under each worker JVM and by their working
directory (inside the worker's --work-dir), and both are killed.

The `spark_cluster` fixture (module scope) starts one cluster per test module; a module may
override `spark_cluster_worker_env` to give the workers' environment (what an EMR node would
have: S3 endpoint and credentials).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import psutil
import pytest

#: The pinned pyspark is a complete Spark distribution: bin/spark-class, jars/.
SPARK_HOME = Path(__import__("pyspark").__file__).resolve().parent
HOST = "127.0.0.1"

#: What the cluster's JVMs inherit from us; everything else is set explicitly.
_PASS = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "JAVA_HOME")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def get_json(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - 127.0.0.1 only
        return json.loads(resp.read().decode())


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.2):
    """Poll `condition()` until it returns something truthy (returned); TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except DaemonDied:
            raise
        except Exception as exc:  # noqa: BLE001 - a UI not up yet, a process gone: try again
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}" + (f" (last error: {last_exc!r})" if last_exc else ""))


class DaemonDied(RuntimeError):
    """A master or worker JVM exited while we waited for it."""


@dataclass
class Daemon:
    """One JVM of the cluster (the master or a worker) and where it keeps its things."""

    name: str
    proc: subprocess.Popen
    dir: Path
    port: int
    webui_port: int
    log: Path
    started_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def work_dir(self) -> Path:
        return self.dir / "work"

    @property
    def cache_dir(self) -> Path:
        return self.dir / "cache"

    def alive(self) -> bool:
        return self.proc.poll() is None


@dataclass
class StandaloneCluster:
    base: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    #: extra environment for the workers (and so for their executors and Python workers)
    worker_env: Mapping[str, str] = field(default_factory=dict)
    #: heap of the master and worker daemons themselves (Spark's default is 1g each)
    daemon_memory: str = "256m"
    master: Daemon | None = None
    nodes: dict[str, Daemon] = field(default_factory=dict)
    #: every process we killed or stopped, for the report
    events: list[str] = field(default_factory=list)
    #: every Daemon ever started (replacement workers included), for stop()
    _all: list[Daemon] = field(default_factory=list)

    # ------------------------------------------------------------------ start

    @property
    def master_url(self) -> str:
        return f"spark://{HOST}:{self.master.port}"

    @property
    def master_ui(self) -> str:
        return f"http://{HOST}:{self.master.webui_port}"

    def _env(self, extra: Mapping[str, str] | None = None, local_dirs: Path | None = None) -> dict[str, str]:
        env = {k: os.environ[k] for k in _PASS if k in os.environ}
        conf = self.base / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        env.update({
            "SPARK_HOME": str(SPARK_HOME),
            "SPARK_CONF_DIR": str(conf),
            "SPARK_LOCAL_IP": HOST,
            "SPARK_LOCAL_HOSTNAME": HOST,
            "SPARK_DAEMON_MEMORY": self.daemon_memory,
            "SPARK_LOG_DIR": str(self.base / "logs"),
        })
        if local_dirs is not None:
            env["SPARK_LOCAL_DIRS"] = str(local_dirs)
        env.update({k: str(v) for k, v in (extra or {}).items()})
        return env

    def _spawn(self, name: str, cls: str, args: list[str], env: dict[str, str], port: int, webui_port: int) -> Daemon:
        d = self.base / name
        d.mkdir(parents=True, exist_ok=True)
        log = d / f"{name}.log"
        fh = open(log, "ab")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), cls, *args], stdout=fh, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, cwd=d, start_new_session=True)
        fh.close()
        daemon = Daemon(name=name, proc=proc, dir=d, port=port, webui_port=webui_port, log=log, started_s=time.monotonic())
        self._all.append(daemon)
        return daemon

    def start(self, timeout: float = 180) -> "StandaloneCluster":
        t0 = time.monotonic()
        self.base.mkdir(parents=True, exist_ok=True)
        port, ui = free_port(), free_port()
        self.master = self._spawn("master", "org.apache.spark.deploy.master.Master",
                                  ["--host", HOST, "--port", str(port), "--webui-port", str(ui)], self._env(), port, ui)
        wait_for(lambda: self._check_alive(self.master) or self.master_state().get("status") == "ALIVE", timeout,
                 f"the standalone master ({self.master.log})")
        for i in range(1, self.workers + 1):
            self.start_worker(f"w{i}", wait=False)
        self.wait_workers(self.workers, timeout=max(10.0, timeout - (time.monotonic() - t0)))
        self.started_s = time.monotonic() - t0
        return self

    def start_worker(self, name: str, *, wait: bool = True, timeout: float = 120) -> Daemon:
        """Start a worker (also a replacement: a new name, new folders)."""
        d = self.base / name
        for sub in ("work", "local", "cache"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "cache", 0o700)  # storage.private_dir insists on a private cache
        port, ui = free_port(), free_port()
        env = self._env({**self.worker_env, "DHS_CACHE_DIR": str(d / "cache")}, local_dirs=d / "local")
        node = self._spawn(name, "org.apache.spark.deploy.worker.Worker",
                           ["--host", HOST, "--port", str(port), "--webui-port", str(ui), "--cores", str(self.cores),
                            "--memory", self.memory, "--work-dir", str(d / "work"), self.master_url], env, port, ui)
        self.nodes[name] = node
        if wait:
            self.wait_workers(len(self.alive_nodes()), timeout=timeout)
        return node

    def _check_alive(self, daemon: Daemon) -> bool:
        if not daemon.alive():
            raise DaemonDied(f"{daemon.name} exited with {daemon.proc.returncode}; log {daemon.log}:\n"
                               + daemon.log.read_text(errors="replace")[-3000:])
        return False

    def alive_nodes(self) -> list[str]:
        return [n for n, d in self.nodes.items() if d.alive()]

    def wait_workers(self, n: int, timeout: float = 120) -> list[dict]:
        """Until the master's JSON lists `n` ALIVE workers (one per live worker JVM of ours)."""
        def ready():
            alive = [w for w in self.master_state().get("workers", []) if w.get("state") == "ALIVE"]
            return alive if len(alive) >= n else None

        return wait_for(ready, timeout, f"{n} ALIVE workers in {self.master_ui}/json")

    # ------------------------------------------------------------------ state

    def master_state(self) -> dict:
        return get_json(f"{self.master_ui}/json")

    def worker_state(self, name: str) -> dict:
        return get_json(f"http://{HOST}:{self.nodes[name].webui_port}/json")

    def executor_ids(self, name: str, app_id: str | None = None) -> set[str]:
        """Ids of the executors that worker `name` runs now (of one application, if given)."""
        st = self.worker_state(name)
        return {str(e["id"]) for e in st.get("executors", []) if app_id is None or e.get("appid") == app_id}

    # ------------------------------------------------------------------ processes

    def processes(self, name: str) -> list[psutil.Process]:
        """Everything that belongs to worker `name`: its JVM, every descendant of it, and any
        process whose working directory lies inside the worker's folder (executors run in
        <work-dir>/<app>/<executor>, and so do their Python workers)."""
        node = self.nodes[name]
        found: dict[int, psutil.Process] = {}
        try:
            root = psutil.Process(node.pid)
            found[root.pid] = root
            for p in root.children(recursive=True):
                found[p.pid] = p
        except psutil.NoSuchProcess:
            pass
        found.update({p.pid: p for p in _procs_inside(node.dir)})
        return list(found.values())

    def executor_processes(self, name: str) -> list[psutil.Process]:
        """The executor JVMs of worker `name` and their descendants (Python daemon and workers)."""
        out: dict[int, psutil.Process] = {}
        for p in self.processes(name):
            try:
                if "CoarseGrainedExecutorBackend" in " ".join(p.cmdline()):
                    out[p.pid] = p
                    out.update({c.pid: c for c in p.children(recursive=True)})
            except psutil.NoSuchProcess:
                continue
        return list(out.values())

    def python_workers(self, name: str) -> list[psutil.Process]:
        return [p for p in self.executor_processes(name) if _is_python(p)]

    def kill_worker(self, name: str) -> list[str]:
        """SIGKILL worker `name` as a lost node would go: its JVM, executors, Python workers."""
        procs = self.processes(name)
        killed = _kill_all(procs)
        self.nodes[name].proc.wait(timeout=30)
        self.events.append(f"killed worker {name}: {killed}")
        return killed

    def kill_executors(self, name: str) -> list[str]:
        """SIGKILL the executor JVMs of worker `name` (and their Python workers); the worker lives."""
        killed = _kill_all(self.executor_processes(name))
        self.events.append(f"killed executors of {name}: {killed}")
        return killed

    def stop(self) -> list[str]:
        """Stop every process of ours: SIGTERM to each daemon's session, then SIGKILL anything of
        ours that is still there (by tree and by working directory). Returns what was left
        behind after that (should be nothing)."""
        for d in reversed(self._all):
            if d.alive():
                try:
                    os.killpg(d.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for d in self._all:
            try:
                d.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        rest: dict[int, psutil.Process] = {}
        for d in self._all:
            try:
                root = psutil.Process(d.pid)
                rest[root.pid] = root
                rest.update({c.pid: c for c in root.children(recursive=True)})
            except psutil.NoSuchProcess:
                pass
        rest.update({p.pid: p for p in _procs_inside(self.base)})
        _kill_all(list(rest.values()))
        for d in self._all:
            if d.alive():
                d.proc.kill()
                d.proc.wait(timeout=10)
        return [_describe(p) for p in self.leftovers()]

    def leftovers(self) -> list[psutil.Process]:
        """Live processes that belong to this cluster (what `ps` would show), after stop()."""
        mine = str(self.base)
        out = []
        for p in psutil.process_iter(["pid", "cmdline", "cwd", "status"]):
            try:
                if p.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                cmd = " ".join(p.info["cmdline"] or [])
                if mine in cmd or (p.info["cwd"] or "").startswith(mine):
                    out.append(p)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        return out


def _is_python(p: psutil.Process) -> bool:
    try:
        return "python" in os.path.basename(p.cmdline()[0] if p.cmdline() else p.name())
    except (psutil.NoSuchProcess, psutil.AccessDenied, IndexError):
        return False


def _procs_inside(folder: Path) -> list[psutil.Process]:
    mine = str(folder)
    out = []
    for p in psutil.process_iter(["cwd"]):
        try:
            cwd = p.info["cwd"] or ""
            if cwd == mine or cwd.startswith(mine + os.sep):
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


def _describe(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
        short = "java " + next((c for c in cmd if c.startswith("org.apache.spark")), "?") if "java" in (cmd[0] if cmd else "") \
            else " ".join(cmd[:3])
        return f"{p.pid} {short}"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return f"{p.pid} (gone)"


def _kill_all(procs: list[psutil.Process]) -> list[str]:
    """SIGKILL all of them at once (no process gets to notice another's death first)."""
    names = []
    for p in procs:
        names.append(_describe(p))
    for p in procs:
        try:
            p.send_signal(signal.SIGKILL)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    psutil.wait_procs(procs, timeout=10)
    return names


# ---------------------------------------------------------------------- pytest fixtures


@pytest.fixture(scope="module")
def spark_cluster_worker_env() -> dict[str, str]:
    """Environment of the workers (override in a test module)."""
    return {}


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory, spark_cluster_worker_env):
    """A started standalone cluster (master + 2 workers), stopped at teardown whatever happened;
    teardown fails if any of its processes is still alive afterwards."""
    cluster = StandaloneCluster(tmp_path_factory.mktemp("spark_cluster"), worker_env=spark_cluster_worker_env)
    try:
        cluster.start()
        print(f"\nstandalone cluster up in {cluster.started_s:.1f} s: {cluster.master_url}, workers "
              f"{', '.join(f'{n} (pid {d.pid})' for n, d in cluster.nodes.items())}")
        yield cluster
    finally:
        left = cluster.stop()
    assert not left, f"processes of the Spark cluster still alive after stop(): {left}"
