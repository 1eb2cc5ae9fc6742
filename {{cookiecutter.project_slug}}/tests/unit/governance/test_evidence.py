"""Evidence bundles: written atomically, verified against the sha256 of every file."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.governance.evidence import EvidenceError, read_manifest, verify_bundle, write_bundle

pytestmark = pytest.mark.unit

FILES = {
    "metrics.json": b'{"accuracy": 0.85}\n',
    "fairness.json": b'{"features": []}\n',
    "chart.png": bytes(range(256)),
}
IDENTITY = {"model": "income-classifier", "version": 3, "git_sha": "abc123"}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    target = tmp_path / "reports" / "income-classifier" / "3"
    write_bundle(target, FILES, IDENTITY)
    return target


def test_fresh_bundle_verifies_intact(bundle: Path) -> None:
    integrity = verify_bundle(bundle)
    assert integrity.intact
    assert (integrity.missing, integrity.tampered, integrity.unexpected) == ([], [], [])
    assert sorted(path.name for path in bundle.iterdir()) == sorted([*FILES, "evidence.json"])


def test_manifest_records_identity_and_sha256_of_the_written_bytes(bundle: Path) -> None:
    manifest = json.loads((bundle / "evidence.json").read_text(encoding="utf-8"))
    assert read_manifest(bundle) == manifest
    assert {key: manifest[key] for key in IDENTITY} == IDENTITY
    assert manifest["files"] == {
        name: hashlib.sha256((bundle / name).read_bytes()).hexdigest() for name in FILES
    }
    assert manifest["files"]["chart.png"] == hashlib.sha256(bytes(range(256))).hexdigest()


def test_one_changed_byte_marks_the_file_tampered(bundle: Path) -> None:
    content = bytearray((bundle / "chart.png").read_bytes())
    content[100] ^= 1
    (bundle / "chart.png").write_bytes(bytes(content))
    integrity = verify_bundle(bundle)
    assert integrity.tampered == ["chart.png"]
    assert integrity.missing == []
    assert not integrity.intact


def test_deleted_file_is_reported_missing(bundle: Path) -> None:
    (bundle / "fairness.json").unlink()
    integrity = verify_bundle(bundle)
    assert integrity.missing == ["fairness.json"]
    assert integrity.tampered == []
    assert not integrity.intact


def test_extra_file_is_unexpected_but_bundle_stays_intact(bundle: Path) -> None:
    (bundle / "notes.txt").write_text("added by hand\n", encoding="utf-8")
    integrity = verify_bundle(bundle)
    assert integrity.unexpected == ["notes.txt"]
    assert integrity.intact


def test_missing_manifest_is_an_evidence_error(bundle: Path) -> None:
    (bundle / "evidence.json").unlink()
    with pytest.raises(EvidenceError, match=r"evidence\.json"):
        verify_bundle(bundle)


def test_unreadable_manifest_is_an_evidence_error(bundle: Path) -> None:
    (bundle / "evidence.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(EvidenceError, match=r"evidence\.json is not valid JSON"):
        verify_bundle(bundle)


def test_absent_bundle_directory_is_an_evidence_error(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no evidence bundle"):
        verify_bundle(tmp_path / "reports" / "income-classifier" / "9")


def test_rewriting_replaces_the_previous_bundle(bundle: Path) -> None:
    new_files = {"metrics.json": b'{"accuracy": 0.9}\n', "shap.json": b"{}\n"}
    write_bundle(bundle, new_files, {**IDENTITY, "git_sha": "def456"})
    assert sorted(path.name for path in bundle.iterdir()) == ["evidence.json", "metrics.json", "shap.json"]
    assert (bundle / "metrics.json").read_bytes() == new_files["metrics.json"]
    assert read_manifest(bundle)["git_sha"] == "def456"
    assert verify_bundle(bundle).intact
    assert [path.name for path in bundle.parent.iterdir()] == [bundle.name]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def test_failed_write_leaves_the_previous_bundle_and_no_staging_directory(bundle: Path) -> None:
    before = snapshot(bundle)
    broken = {"metrics.json": b"{}\n", "missing-subdir/shap.json": b"{}\n"}
    with pytest.raises(FileNotFoundError):
        write_bundle(bundle, broken, IDENTITY)
    assert snapshot(bundle) == before
    assert verify_bundle(bundle).intact
    assert [path.name for path in bundle.parent.iterdir()] == [bundle.name]


def test_write_error_midway_leaves_the_previous_bundle(bundle: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(bundle)
    original = Path.write_bytes
    calls = []

    def fail_on_second_call(self: Path, data: bytes) -> int:
        calls.append(self.name)
        if len(calls) == 2:
            raise OSError("disk full")
        return original(self, data)

    monkeypatch.setattr(Path, "write_bytes", fail_on_second_call)
    with pytest.raises(OSError, match="disk full"):
        write_bundle(bundle, {"metrics.json": b"{}\n", "shap.json": b"{}\n"}, IDENTITY)
    monkeypatch.undo()
    assert snapshot(bundle) == before
    assert [path.name for path in bundle.parent.iterdir()] == [bundle.name]


def test_failed_first_write_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "income-classifier" / "1"
    with pytest.raises(FileNotFoundError):
        write_bundle(target, {"a.json": b"{}", "no-such-dir/b.json": b"{}"}, IDENTITY)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


@pytest.mark.parametrize("name", ["race/ethnicity", "../etc", "a b", "Ünïcode", "", ".hidden"])
def test_file_names_from_column_names_are_safe_and_distinct(name: str) -> None:
    from {{ cookiecutter.package_name }}.governance.evidence import safe_file_name

    file_name = safe_file_name("fairness_", name, ".png")
    assert re.fullmatch(r"fairness_[A-Za-z0-9._-]+\.png", file_name)
    assert "/" not in file_name and ".." not in file_name
    assert file_name != safe_file_name("fairness_", name + "_", ".png")


def test_plain_column_names_keep_their_file_name() -> None:
    from {{ cookiecutter.package_name }}.governance.evidence import safe_file_name

    assert safe_file_name("fairness_", "native-country", ".png") == "fairness_native-country.png"
    assert safe_file_name("fairness_", "race/ethnicity", ".png") != safe_file_name(
        "fairness_", "race_ethnicity", ".png"
    )
