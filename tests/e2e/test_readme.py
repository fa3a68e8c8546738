"""The README's first five minutes, as written: its banner, its publish and read blocks run by bash, and its
console address, against `recovery dev` (what `make run` starts). Only the two ports are changed, to free ones."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from service.entrypoints.embedded import free_port
from tests.e2e.dev import READY_LINE, DevProcess
from tests.support import eventually

README = Path(__file__).resolve().parents[2] / "README.md"
HTTP = "127.0.0.1:8080"
KAFKA = "127.0.0.1:19092"


def blocks(section: str, language: str) -> list[str]:
    """The fenced blocks of one `## ` section of the README in one language ('' for plain ones)."""
    text = README.read_text(encoding="utf-8")
    body = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert body, f"the README has a section {section!r}"
    found, fence, lines = [], None, []
    for line in body.group(1).splitlines():
        if fence is None and line.startswith("```"):
            fence, lines = line[3:].strip(), []
        elif fence is not None and line == "```":
            if fence == language:
                found.append("\n".join(lines) + "\n")
            fence = None
        elif fence is not None:
            lines.append(line)
    assert found, f"the README's {section!r} has a {language or 'plain'} block"
    return found


class Newcomer:
    """A second terminal in the repository folder: the README's .venv and .data are the test's."""

    def __init__(self, folder: Path, http_port: int, kafka_port: int) -> None:
        self.folder, self.http, self.kafka = folder, f"127.0.0.1:{http_port}", f"127.0.0.1:{kafka_port}"
        (folder / ".venv").symlink_to(Path(sys.prefix))

    def address(self, text: str) -> str:
        return text.replace(HTTP, self.http).replace(KAFKA, self.kafka)

    async def run(self, block: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERY_")}
        return await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", self.address(block)],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )


def banner() -> list[str]:
    """The lines of the README's `make run` output that hold no path of the reader's machine."""
    shown = next(b for b in blocks("The two commands", "") if "Recovery Loop is starting" in b)
    return [line for line in shown.splitlines() if line and "…" not in line]


async def test_the_readme_publishes_a_signal_reads_its_case_and_shows_the_console(tmp_path: Path) -> None:
    http_port, kafka_port = free_port(), free_port()
    [publish] = blocks("Publish a signal", "sh")
    [read] = blocks("Read a case", "sh")
    assert KAFKA in publish and HTTP in read, "the blocks name the addresses `make run` prints"
    newcomer = Newcomer(tmp_path, http_port, kafka_port)
    dev = DevProcess(tmp_path, http_port, kafka_port)
    try:
        await eventually(dev.joined, timeout=120, what="the banner's ready line")
        printed = dev.output.read_text()
        assert READY_LINE in banner()[-1]
        for line in banner():
            assert newcomer.address(line) in printed, f"{line!r} not in:\n{printed}"

        published = await newcomer.run(publish)
        assert published.returncode == 0, published.stderr
        assert "published nps signal" in published.stdout and "recovery.signals.nps.v1" in published.stdout

        async def case_read() -> subprocess.CompletedProcess[str] | None:
            done = await newcomer.run(read)
            return done if done.returncode == 0 else None

        shown = await eventually(case_read, timeout=60, what="the README's read block to show the case")
        assert '"customer_id":"cust-42"' in shown.stdout, shown.stdout
        assert "nps:0-3" in shown.stdout and '"events":' in shown.stdout, shown.stdout

        console = next(line.split()[1] for line in banner() if line.strip().startswith("console"))
        async with httpx.AsyncClient(follow_redirects=True, timeout=10) as browser:
            page = await browser.get(newcomer.address(console))
        assert page.status_code == 200 and "token" in page.text.lower(), page.text[:500]
    finally:
        dev.stop()
