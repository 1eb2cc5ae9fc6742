"""The evidence bundle: every report file of one model version plus a manifest of their sha256.

A bundle is written to a temporary directory and moved into place in one step, so a failure never
leaves a half-written bundle; `verify_bundle` tells which files are missing or altered.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from {{ cookiecutter.package_name }}.errors import ProjectError

MANIFEST = "evidence.json"


class EvidenceError(ProjectError):
    """A bundle is absent, unreadable or does not match its manifest."""


@dataclass(frozen=True)
class Integrity:
    missing: list[str] = field(default_factory=list)
    tampered: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not (self.missing or self.tampered)

    def problems(self) -> list[str]:
        return (
            [f"{name} is missing" for name in self.missing]
            + [f"{name} does not match its sha256 in {MANIFEST}" for name in self.tampered]
            + [f"{name} is not listed in {MANIFEST}" for name in self.unexpected]
        )

    def to_dict(self) -> dict[str, list[str]]:
        return {"missing": self.missing, "tampered": self.tampered}


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def bundle_directory(reports_dir: Path, model_name: str, version: int) -> Path:
    return reports_dir / model_name / str(version)


def write_bundle(target: Path, files: dict[str, bytes], identity: dict) -> dict:
    """Write `files` and their manifest to `target` atomically, replacing any previous bundle."""
    manifest = {**identity, "files": {name: sha256_bytes(content) for name, content in sorted(files.items())}}
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        for name, content in files.items():
            (staging / name).write_bytes(content)
        (staging / MANIFEST).write_text(
            json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _swap_into_place(staging, target)
    return manifest


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace `target` by `staging`; if the final move fails, the previous bundle is put back."""
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}-old")
    shutil.rmtree(retired, ignore_errors=True)
    target.rename(retired)
    try:
        staging.rename(target)
    except BaseException:
        retired.rename(target)
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not directory.is_dir():
        raise EvidenceError(
            f"no evidence bundle at {directory}: run the report command for this version first"
        )
    if not path.is_file():
        raise EvidenceError(
            f"{path} is missing: the bundle is incomplete, rebuild it with the report command"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise EvidenceError(f"{path} is not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise EvidenceError(f"{path}: expected a 'files' mapping of file name to sha256")
    return manifest


def verify_bundle(directory: Path) -> Integrity:
    """Compare every file of the bundle with the sha256 recorded in its manifest."""
    manifest = read_manifest(directory)
    missing, tampered = [], []
    for name, digest in sorted(manifest["files"].items()):
        path = directory / name
        if not path.is_file():
            missing.append(name)
        elif sha256_bytes(path.read_bytes()) != digest:
            tampered.append(name)
    present = {path.name for path in directory.iterdir() if path.is_file()}
    unexpected = sorted(present - set(manifest["files"]) - {MANIFEST})
    return Integrity(missing=missing, tampered=tampered, unexpected=unexpected)


def read_json(directory: Path, name: str) -> dict:
    try:
        return json.loads((directory / name).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise EvidenceError(f"{directory / name} cannot be read: {error}") from None


def safe_file_name(prefix: str, name: str, suffix: str) -> str:
    """A bundle file name for a column or group `name` (which may hold '/', spaces, accents ...).

    Names made only of letters, digits, '.', '_' and '-' are kept as they are; any other name is
    reduced to those characters and given a short digest of the original, so two names never share
    a file. The original name stays in the JSON that refers to the file.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")
    if cleaned == name and cleaned:
        return f"{prefix}{name}{suffix}"
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{prefix}{cleaned[:60] or 'column'}-{digest}{suffix}"
