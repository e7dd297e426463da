"""A real Ray cluster on this machine: a head node and a second node process, for tests and benchmarks.

Each node is its own `ray start --block` process group (GCS and raylet on the head, a raylet of its
own on the second node), so tasks scheduled on the second node really cross raylets and the second
node can be killed (`kill_node`, SIGKILL of its raylet) and started again (`start_node`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ("LocalRayCluster",)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    """Every process below `pid` (by /proc's parent links)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    out, stack = [], [pid]
    while stack:
        for child in parents.get(stack.pop(), []):
            out.append(child)
            stack.append(child)
    return out


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def connect(address: str | None, **options: Any) -> None:
    """`ray.init` this process to `address` (a cluster on 127.0.0.1 is joined as 127.0.0.1, not as the host's IP)."""
    import ray

    host = (address or "").removeprefix("ray://").rpartition(":")[0]
    if host in ("127.0.0.1", "localhost"):
        options.setdefault("_node_ip_address", "127.0.0.1")
    ray.init(address=address, log_to_driver=False, configure_logging=False, **options)


class LocalRayCluster:
    """Start a two-node Ray cluster on 127.0.0.1 (small object stores), and stop it.

    Args:
        cpus: CPUs each node advertises.
        object_store_bytes: each node's object store (Ray's minimum is about 75 MB).
    """

    def __init__(
        self, *, cpus: float = 1, object_store_bytes: int = 80_000_000
    ) -> None:
        self.cpus, self.object_store_bytes = cpus, object_store_bytes
        self.temp_dir = tempfile.mkdtemp(
            prefix="crh-ray-", dir="/tmp"
        )  # sockets: keep it short
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.ray = str(Path(sys.executable).with_name("ray"))
        # a dead node is noticed within about 3 s (Ray's default is tens of seconds)
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_health_check_initial_delay_ms": "1000",
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "1000",
                    "RAY_health_check_failure_threshold": "3",
                    # a test cluster on 127.0.0.1 without token auth (Ray >= 2.5x would otherwise turn it
                    # on for clusters it starts and write a token into ~/.ray)
                    "RAY_AUTH_MODE": "disabled",
                    # no idle Python workers started ahead of need: on a small machine they only compete
                    "RAY_enable_worker_prestart": "0", "RAY_prestart_worker_first_driver": "0"}  # fmt: skip
        self.head: subprocess.Popen[bytes] | None = None
        self.node: subprocess.Popen[bytes] | None = None

    def _start(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        with (Path(self.temp_dir) / log).open("ab") as out:
            return subprocess.Popen(
                [self.ray, "start", "--block", "--node-ip-address=127.0.0.1",
                 f"--num-cpus={self.cpus}", f"--object-store-memory={self.object_store_bytes}",
                 "--disable-usage-stats", *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )  # fmt: skip

    def start(self, timeout: float = 300.0) -> LocalRayCluster:
        """Start the head and the second node; returns when both are alive (stops what it started if not).

        This process (and the processes it starts) then runs with `RAY_AUTH_MODE=disabled`, as the
        cluster does, so that it can connect.
        """
        os.environ["RAY_AUTH_MODE"] = "disabled"
        try:
            self._start_all(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start_all(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._start_head(
            deadline
        ):  # Ray gives a raylet 30 s to register: on a loaded
            if (
                time.monotonic() > deadline
            ):  # machine that can pass, so the head is started again
                raise RuntimeError(
                    f"the Ray head did not start: {self.log('head.log')}"
                )
        self.start_node(timeout=max(1.0, deadline - time.monotonic()))

    def _start_head(self, deadline: float) -> bool:
        if self.head is not None:  # a failed attempt: end what is left of it
            self._end(self.head, grace=0.0)
            self.port = _free_port()
            self.address = f"127.0.0.1:{self.port}"
        self.head = self._start(
            ["--head", f"--port={self.port}", "--include-dashboard=false",
             f"--ray-client-server-port={_free_port()}", f"--temp-dir={self.temp_dir}",
             f"--resources={json.dumps({'head': 1})}"],
            "head.log",
        )  # fmt: skip
        while True:  # the GCS must listen ...
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.head.poll() is not None or time.monotonic() > deadline:
                    return False
                time.sleep(0.2)
        while (
            self.head.poll() is None
        ):  # ... and the head's raylet must have registered
            if "Ray runtime started" in (Path(self.temp_dir) / "head.log").read_text(
                errors="replace"
            ):
                connect(self.address)
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return False

    def start_node(self, timeout: float = 300.0) -> None:
        """Start (again) the second node, with a resource `node2` of 1, and wait until the cluster has two nodes.

        A node whose start times out (a loaded machine: the GCS answers late) is started again.
        """
        deadline = time.monotonic() + timeout
        while True:
            self.node = self._start(
                [
                    f"--address={self.address}",
                    f"--resources={json.dumps({'node2': 1})}",
                ],
                "node2.log",
            )
            while self.node.poll() is None and len(self.alive_nodes()) != 2:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the second Ray node did not join: {self.log('node2.log')}"
                    )
                time.sleep(0.5)
            if self.node.poll() is None:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the second Ray node did not start: {self.log('node2.log')}"
                )

    def alive_nodes(self) -> list[dict[str, Any]]:
        """The cluster's live nodes (`ray.nodes()`; connects this process to the cluster if it is not)."""
        import ray

        if not ray.is_initialized():
            connect(self.address)
        return [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]

    def wait_nodes(self, count: int, timeout: float = 120.0) -> None:
        """Wait until `count` nodes are alive."""
        deadline = time.monotonic() + timeout
        while len(self.alive_nodes()) != count:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Ray cluster did not reach {count} live nodes: {self.log('node2.log')}"
                )
            time.sleep(0.5)

    def raylet_pid(self) -> int:
        """The process id of the second node's raylet."""
        assert self.node is not None
        pids = [p for p in _children(self.node.pid) if _name(p) == "raylet"]
        if not pids:
            raise RuntimeError("the second node has no raylet process")
        return pids[0]

    def kill_node(self) -> None:
        """SIGKILL the second node's raylet (its workers die with it), then the rest of its process group."""
        assert self.node is not None
        below = _children(self.node.pid)
        os.kill(self.raylet_pid(), signal.SIGKILL)
        self._end(self.node, grace=5.0)
        for pid in below:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        self.node = None

    def log(self, name: str) -> str:
        path = Path(self.temp_dir) / name
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @staticmethod
    def _end(proc: subprocess.Popen[bytes], grace: float) -> None:
        """Wait up to `grace` s for the node's `ray start` to exit, then SIGKILL what is left of its group."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop(self) -> None:
        """Disconnect this process, stop both nodes (their process groups), remove the temporary directory."""
        import ray

        if ray.is_initialized():
            ray.shutdown()
        for proc in (self.node, self.head):
            if proc is not None:
                below = _children(proc.pid)  # Ray's workers start sessions of their own
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                self._end(proc, grace=15.0)
                for pid in below:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        continue
        self.node = self.head = None
        for _ in range(10):  # a dying node may still write its last log lines
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            if not Path(self.temp_dir).exists():
                break
            time.sleep(0.5)
