"""The built wheel is complete: installed (not editable) into a fresh virtual environment,
`flagctl demo ws8` and `flagctl demo recsys` run from it on an embedded PostgreSQL of
their own. The recommender's profiles are data files: a wheel without them has no
safety baselines to roll back to."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh venv holding flagctl from its wheel; its dependencies come from the test's
    own environment through a path entry (no network, no second download)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"  # a clean copy: no build/ left over from an earlier build
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(root / "dist"), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    wheel = next((root / "dist").glob("flagctl-*.whl"))
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    # A plain path line: the dependencies become importable, the editable flagctl does not
    # (its finder is only activated by the test environment's own .pth processing).
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    try:
        yield env_dir
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(env_dir: Path, data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "FLAGCTL_"))}
    env |= {"FLAGCTL_DATA_DIR": str(data_dir), "FLAGCTL_CONFIG": os.devnull}
    return subprocess.run(
        [str(env_dir / "bin" / "flagctl"), *args],
        env=env, cwd=data_dir.parent, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_wheel_carries_every_example_file(installed: Path) -> None:
    python = installed / "bin" / "python"
    listing = subprocess.run(
        [str(python), "-c",
         "import flagctl, importlib.resources as r; print(flagctl.__file__);"
         "e = r.files('flagctl') / 'examples';"
         "print('\\n'.join(sorted(str(p.relative_to(e)) for p in __import__('pathlib').Path(str(e)).rglob('*.*'))))"],
        check=True, capture_output=True, text=True, cwd=installed,
    ).stdout.split()  # fmt: skip
    assert listing[0].startswith(str(installed)), "flagctl must come from the wheel, not the checkout"
    shipped = {
        str(p.relative_to(ROOT / "flagctl" / "examples"))
        for p in (ROOT / "flagctl" / "examples").rglob("*.*")
    }
    assert shipped <= set(listing[1:])
    assert "recsys/profiles/emergency.yaml" in listing


@pytest.mark.slow  # 16 s; make test keeps the wheel's contents check, CI runs this too (make test-slow)
def test_both_demos_run_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    try:
        recsys = run(installed, data_dir, "demo", "recsys")
        assert recsys.returncode == 0, recsys.stdout + recsys.stderr
        assert "rolled back: apply profile emergency" in recsys.stdout
        ws8 = run(installed, data_dir, "demo", "ws8")
        assert ws8.returncode == 0, ws8.stdout + ws8.stderr
        assert "demo complete" in ws8.stdout
    finally:
        run(installed, data_dir, "local", "stop")
