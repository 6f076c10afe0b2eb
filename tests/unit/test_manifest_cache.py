"""The manifest cache: the same text is validated once; an edit never gets a stale answer;
nothing wrong with the cache ever fails a command."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from flagctl.errors import ManifestError
from flagctl.model.cache import ManifestCache, _code_version
from flagctl.model.manifest import load_manifest, parse_manifest

GROUPS = Path(__file__).resolve().parents[2] / "flagctl" / "examples" / "groups" / "flagctl.yaml"


@pytest.fixture
def manifest_file(tmp_path: Path) -> Path:
    path = tmp_path / "flagctl.yaml"
    path.write_text(GROUPS.read_text())
    return path


def test_a_cached_manifest_is_the_validated_one_under_its_current_path(
    manifest_file: Path, tmp_path: Path
) -> None:
    cache = ManifestCache(tmp_path / "cache")
    first = load_manifest(manifest_file, cache)
    entries = list((tmp_path / "cache").glob("manifest-*.pickle"))
    assert len(entries) == 1
    assert entries[0].stat().st_mode & 0o077 == 0  # private: only the user reads or writes it
    moved = tmp_path / "elsewhere.yaml"
    moved.write_text(manifest_file.read_text())
    again = load_manifest(moved, cache)
    assert again.path == str(moved)  # errors and the profiles folder follow the file read now
    assert again == parse_manifest(manifest_file.read_text(), str(moved))
    assert first.switches == again.switches and first.model == again.model


def test_an_edited_manifest_is_validated_again_never_served_stale(
    manifest_file: Path, tmp_path: Path
) -> None:
    cache = ManifestCache(tmp_path / "cache")
    load_manifest(manifest_file, cache)
    manifest_file.write_text(manifest_file.read_text().replace("level: 5", "level: 9", 1))
    with pytest.raises(ManifestError, match="less than or equal to 5"):
        load_manifest(manifest_file, cache)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "another object", "another text", "other code"])
def test_a_damaged_entry_is_a_miss_and_is_replaced(manifest_file: Path, tmp_path: Path, damage: str) -> None:
    cache = ManifestCache(tmp_path / "cache")
    text = manifest_file.read_text()
    load_manifest(manifest_file, cache)
    entry = cache._entry(_code_version(), text)
    good = entry.read_bytes()
    entry.write_bytes(
        {
            "truncated": good[: len(good) // 2],
            "garbage": b"\x00not a pickle",
            "another object": pickle.dumps([1]),
            # an entry found by its checksum is used only if it holds this very text and code
            "another text": pickle.dumps((_code_version(), text + "\n", parse_manifest(text, "x"))),
            "other code": pickle.dumps(("3.11.0;old", text, parse_manifest(text, "x"))),
        }[damage]
    )
    assert cache.get(text, "x") is None  # a miss
    assert load_manifest(manifest_file, cache) == parse_manifest(text, str(manifest_file))
    assert cache.get(text, "x").system == "groups"  # validated and stored again


def test_an_entry_others_can_write_is_not_trusted(manifest_file: Path, tmp_path: Path) -> None:
    """A pickle is code: a planted entry is used only if it is private to the user. The
    planted one here is a valid manifest of another system, so using it would show."""
    cache = ManifestCache(tmp_path / "cache")
    text = manifest_file.read_text()
    load_manifest(manifest_file, cache)
    entry = cache._entry(_code_version(), text)
    other = parse_manifest(text.replace("system: groups", "system: planted"), "p.yaml")
    entry.write_bytes(pickle.dumps((_code_version(), text, other)))
    entry.chmod(0o666)
    assert load_manifest(manifest_file, cache).system == "groups"  # ignored, validated again
    entry.write_bytes(pickle.dumps((_code_version(), text, other)))
    entry.chmod(0o600)
    assert load_manifest(manifest_file, cache).system == "planted"  # the user's own file is believed
    (tmp_path / "cache").chmod(0o777)
    assert load_manifest(manifest_file, cache).system == "groups"  # a folder others can write: not used


def test_a_cache_folder_that_cannot_be_used_never_fails_the_command(
    manifest_file: Path, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert load_manifest(manifest_file, ManifestCache(blocked / "cache")).system == "groups"
    target = tmp_path / "real"
    target.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(target)
    load_manifest(manifest_file, ManifestCache(tmp_path / "link"))
    assert not list(target.iterdir())  # a symbolic link is not followed to write a pickle


def test_the_cache_folder_comes_from_the_environment(tmp_path: Path) -> None:
    assert ManifestCache.from_environ({"FLAGCTL_CACHE_DIR": str(tmp_path)}) == ManifestCache(tmp_path)
    assert ManifestCache.from_environ({"FLAGCTL_CACHE_DIR": ""}) is None  # turned off
    assert ManifestCache.from_environ({"XDG_CACHE_HOME": "/x/cache"}) == ManifestCache(
        Path("/x/cache/flagctl")
    )
    relative = ManifestCache.from_environ({"XDG_CACHE_HOME": "relative"})
    assert relative == ManifestCache(Path.home() / ".cache" / "flagctl")  # XDG: a relative path is ignored


LOAD = """
import json, sys
from flagctl.model.cache import ManifestCache, _code_version
from flagctl.model.manifest import load_manifest
manifest = load_manifest(sys.argv[1], ManifestCache.from_environ({"FLAGCTL_CACHE_DIR": sys.argv[2]}))
print(json.dumps({"system": manifest.system, "loaded": sorted(m for m in ("pydantic", "yaml") if m in sys.modules)}))
"""


def test_a_cached_manifest_loads_without_yaml_or_pydantic(manifest_file: Path, tmp_path: Path) -> None:
    def load() -> dict[str, object]:
        args = [sys.executable, "-c", LOAD, str(manifest_file), str(tmp_path / "cache")]
        result = subprocess.run(args, capture_output=True, text=True, check=True, env={**os.environ})
        return dict(json.loads(result.stdout))

    assert load() == {"system": "groups", "loaded": ["pydantic", "yaml"]}  # cold: validated
    assert load() == {"system": "groups", "loaded": []}  # warm: neither imported


def test_no_home_folder_means_no_cache_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    def nowhere() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", nowhere)
    assert ManifestCache.from_environ({}) is None


def test_the_gate_reads_a_manifest_file_through_the_cache(
    manifest_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Gate(manifest=PATH) validates a manifest once, as the CLI does: the next process with
    the same text loads it back (at 10,000 flags validating took seconds per process)."""
    from flagctl.gate import Gate

    monkeypatch.setenv("FLAGCTL_CACHE_DIR", str(tmp_path / "cache"))
    gate = Gate("postgresql://unused", manifest=manifest_file, start=False, register=False)
    assert len(list((tmp_path / "cache").glob("manifest-*.pickle"))) == 1
    monkeypatch.setattr("flagctl.model.manifest.parse_manifest", _never)
    again = Gate("postgresql://unused", manifest=manifest_file, start=False, register=False)
    assert again.manifest.flags.keys() == gate.manifest.flags.keys()


def _never(*args: object) -> None:
    raise AssertionError("validated again: the cache was not read")
