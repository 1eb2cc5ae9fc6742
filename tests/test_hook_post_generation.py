"""The steps of hooks/post_gen_project.py, called directly on template-like directories of the tests' own."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import load_hook

post_gen = load_hook("post_gen_project")
pre_gen = load_hook("pre_gen_project")

SHARED_POLICY = "package promotion\n\n# the one policy of every pack\n"
PRODUCTION_LIMITS = {"min_metrics": {"roc_auc": 0.9}}
INSTALLED = ["promotion.rego", "thresholds.yaml"]


def thresholds_text(pack: str) -> str:
    document = {
        "pack": pack,
        "default": {"min_metrics": {"roc_auc": 0.7}},
        "environments": {"production": PRODUCTION_LIMITS},
    }
    return f"# Policy pack {pack!r}\n" + yaml.safe_dump(document, sort_keys=False)


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """A template laid out as the packs are: one shared policy, one thresholds file per pack."""
    root = tmp_path / "template"
    (root / "policies").mkdir(parents=True)
    (root / "cookiecutter.json").write_text("{}")
    (root / "policies" / "promotion.rego").write_text(SHARED_POLICY)
    for pack in ("alpha", "beta"):
        (root / "policies" / pack).mkdir()
        (root / "policies" / pack / "thresholds.yaml").write_text(thresholds_text(pack))
    (root / "policies" / "drafts").mkdir()  # no thresholds: not a pack
    (root / "policies" / "drafts" / "notes.md").write_text("ideas\n")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


def test_install_copies_the_shared_policy_and_the_packs_thresholds(template: Path, project: Path) -> None:
    post_gen.install_policy_pack(template, "beta", project)
    installed = project / "policies"
    assert sorted(path.name for path in installed.iterdir()) == INSTALLED
    assert (installed / "promotion.rego").read_text() == SHARED_POLICY
    assert (installed / "thresholds.yaml").read_text() == thresholds_text("beta")
    assert yaml.safe_load((installed / "thresholds.yaml").read_text())["pack"] == "beta"


def test_install_falls_back_to_a_policy_kept_in_the_pack(template: Path, project: Path) -> None:
    (template / "policies" / "promotion.rego").unlink()
    own_policy = "package promotion\n\n# alpha's own copy\n"
    (template / "policies" / "alpha" / "promotion.rego").write_text(own_policy)
    post_gen.install_policy_pack(template, "alpha", project)
    assert (project / "policies" / "promotion.rego").read_text() == own_policy
    assert (project / "policies" / "thresholds.yaml").read_text() == thresholds_text("alpha")


def test_install_twice_replaces_what_was_installed(template: Path, project: Path) -> None:
    post_gen.install_policy_pack(template, "alpha", project)
    (project / "policies" / "leftover.rego").write_text("package leftover\n")
    post_gen.install_policy_pack(template, "beta", project)
    assert sorted(path.name for path in (project / "policies").iterdir()) == INSTALLED
    assert yaml.safe_load((project / "policies" / "thresholds.yaml").read_text())["pack"] == "beta"


def test_only_directories_with_thresholds_are_packs(template: Path) -> None:
    assert pre_gen.available_policy_packs(template) == ["alpha", "beta"]
    with pytest.raises(pre_gen.AnswerError, match="alpha, beta"):
        pre_gen.check_policy_pack("drafts", template)
    pre_gen.check_policy_pack("alpha", template)


@pytest.mark.parametrize("names", [["dev", "live"], ["staging", "production"]])
def test_the_last_environment_gets_the_production_limits_of_the_installed_pack(
    template: Path, project: Path, names: list[str]
) -> None:
    post_gen.install_policy_pack(template, "alpha", project)
    post_gen.map_final_environment(project, names)
    installed = yaml.safe_load((project / "policies" / "thresholds.yaml").read_text())
    assert installed["environments"][names[-1]] == PRODUCTION_LIMITS
    assert installed["pack"] == "alpha"
    if "production" not in names:
        assert "production" not in installed["environments"]


# The typed environment model's defaults, as its specification states them.
ENVIRONMENT_DEFAULTS = {
    "rollout": {
        "strategy": "direct",
        "challenger_weight": 0,
        "steps": [10, 25, 50, 100],
        "analysis": {"min_requests": 500, "max_error_rate": 0.01, "max_p99_latency_ms": 250},
    },
    "serving": {"workers": 1, "max_batch_rows": 1000, "max_body_bytes": 1048576, "batch_window_ms": 2},
    "image": {"required": False},
    "autoscaling": {"min_replicas": 1, "max_replicas": 3, "target_cpu_percent": 70},
    "resources": {"cpu": "500m", "memory": "1Gi"},
}


def test_each_environment_file_holds_the_typed_defaults_and_names_its_schema(project: Path) -> None:
    post_gen.write_environment_files(project, ["qa", "live"])
    for name in ("qa", "live"):
        text = (project / "environments" / f"{name}.yaml").read_text()
        assert yaml.safe_load(text) == {**ENVIRONMENT_DEFAULTS, "flags": f"flags/{name}.flagd.json"}
        first_line, second_line = text.splitlines()[:2]
        assert first_line == "# yaml-language-server: $schema=../schemas/environment.schema.json"
        assert second_line.startswith(f"# Desired settings of the {name} environment.")
        assert f"env/{name}" in text
        assert f"flags/{name}.flagd.json" in text
        assert "NAME" not in text


def test_an_existing_environment_file_is_kept(project: Path) -> None:
    (project / "environments").mkdir()
    edited = "rollout:\n  strategy: canary\n"
    (project / "environments" / "qa.yaml").write_text(edited)
    post_gen.write_environment_files(project, ["qa", "live"])
    assert (project / "environments" / "qa.yaml").read_text() == edited
    assert yaml.safe_load((project / "environments" / "live.yaml").read_text()) == {
        **ENVIRONMENT_DEFAULTS,
        "flags": "flags/live.flagd.json",
    }


def test_each_environment_gets_a_valid_flag_file_and_an_edited_one_is_kept(project: Path) -> None:
    (project / "flags").mkdir()
    edited = '{"flags": {}}\n'
    (project / "flags" / "qa.flagd.json").write_text(edited)
    post_gen.write_flag_files(project, ["qa", "live"])
    assert (project / "flags" / "qa.flagd.json").read_text() == edited
    text = (project / "flags" / "live.flagd.json").read_text()
    assert "NAME" not in text
    flags = json.loads(text)["flags"]
    assert {"challenger-enabled", "challenger-weight", "explain-predictions"} <= set(flags)
    for name, flag in flags.items():
        assert flag["defaultVariant"] in flag["variants"], name


def test_a_cruft_regeneration_is_told_apart_from_a_project_to_keep(tmp_path: Path) -> None:
    under_cruft = {"project_name": "x", "_template": "/somewhere", "_commit": "0" * 40}
    with tempfile.TemporaryDirectory() as scratch:  # where cruft update and cruft diff generate
        regenerated = Path(scratch) / "x"
        regenerated.mkdir()
        assert post_gen.is_cruft_regeneration(under_cruft, regenerated)
        assert not post_gen.is_cruft_regeneration({"project_name": "x"}, regenerated)
    kept = tmp_path / "x"  # cruft create writes into the output directory the user chose
    kept.mkdir()
    assert not post_gen.is_cruft_regeneration(under_cruft, kept)


def test_the_cruft_state_is_written_as_cruft_writes_it(project: Path) -> None:
    from cruft._commands.utils.cruft import json_dumps

    answers = {
        "project_name": "Café Model",
        "init_git": True,
        "_copy_without_render": ["data/*.csv"],
        "_template": "https://example.com/template.git",
        "_commit": "a" * 40,
    }
    order = ["project_name", "init_git", "_copy_without_render", "_template", "_commit"]
    post_gen.write_cruft_state(project, answers, order)
    expected = {
        "template": answers["_template"],
        "commit": answers["_commit"],
        "checkout": None,
        "context": {"cookiecutter": {key: answers[key] for key in order}},
        "directory": None,
    }
    assert (project / ".cruft.json").read_text(encoding="utf-8") == json_dumps(expected)
    assert list(json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]) == order
