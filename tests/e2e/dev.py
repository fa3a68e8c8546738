"""`recovery dev` as a process, as `make run` starts it: in a folder of the test's own, on free ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

READY_LINE = "Recovery Loop is ready"


class DevProcess:
    def __init__(self, folder: Path, http_port: int, kafka_port: int) -> None:
        self.folder, self.api = folder, f"http://127.0.0.1:{http_port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
        env["RECOVERY_HTTP_PORT"] = str(http_port)
        self.output = folder / "dev.log"
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "service.entrypoints.cli", "dev", "--kafka-port", str(kafka_port)],
                cwd=folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def ready(self) -> bool:
        assert self.process.poll() is None, self.output.read_text()
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(f"{self.api}/readyz")).status_code == 200
        except httpx.HTTPError:
            return False

    async def joined(self) -> bool:
        """Whether the banner's last line is out: the consumers have joined their groups."""
        assert self.process.poll() is None, self.output.read_text()
        return READY_LINE in self.output.read_text()

    def stop(self) -> None:
        """Ctrl-C, as the README says; the embedded broker and database stop with it."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise
