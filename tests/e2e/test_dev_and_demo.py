"""The README's first command and the demo, as a user runs them: `recovery dev` (what `make run` starts),
then `make demo`'s script, then a restart that finds the cases still there."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from service.entrypoints.embedded import free_port
from tests.support import eventually

REPO = Path(__file__).resolve().parents[2]


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

    def stop(self) -> None:
        """Ctrl-C, as the README says; the embedded broker and database stop with it."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise


async def test_make_run_serves_the_demo_and_keeps_its_cases_across_a_restart(tmp_path: Path) -> None:
    http_port, kafka_port = free_port(), free_port()
    dev = DevProcess(tmp_path, http_port, kafka_port)
    try:
        await eventually(dev.ready, timeout=120, what="recovery dev to be ready")
        announced = dev.output.read_text()
        for where in ("/console", "/v1/cases", "/docs", "/openapi.json", "/metrics"):
            assert f":{http_port}{where}" in announced, announced
        demo = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.demo",
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(demo.communicate(), 120)
        shown = out.decode()
        assert demo.returncode == 0, err.decode()
        assert "not there yet" not in shown, shown
        rows = {line.split()[0]: line.split()[1] for line in shown.splitlines() if line.startswith("demo-")}
        severity = {customer.rsplit("-", 1)[1]: value for customer, value in rows.items()}
        assert severity["cho"] == "critical", shown  # gas: a safety category
        assert severity["gus"] == "major", shown  # a billing error with a large amount at stake
        assert "fay" not in severity, shown  # a promoter's score is not a failure
    finally:
        dev.stop()

    safety_customer = next(c for c in rows if c.endswith("-cho"))
    dev = DevProcess(tmp_path, http_port, kafka_port)
    try:
        await eventually(dev.ready, timeout=120, what="recovery dev to be ready again")
        dev_json = tmp_path / ".data" / "dev.json"
        assert dev_json.stat().st_mode & 0o777 == 0o600  # it holds the owner token: for its owner only
        token = next(iter(json.loads(dev_json.read_text())["tokens"]))
        async with httpx.AsyncClient(base_url=dev.api, headers={"Authorization": f"Bearer {token}"}) as api:
            items = (await api.get("/v1/cases", params={"customer_id": safety_customer})).json()["items"]
        assert [(i["customer_id"], i["severity"]) for i in items] == [(safety_customer, "critical")]
    finally:
        dev.stop()
