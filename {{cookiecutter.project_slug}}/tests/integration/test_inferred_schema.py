"""Feature lists left out of project.yaml: inferred from the CSV, used to train, recorded in the evidence."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from {{ cookiecutter.package_name }}.commands.evidence import SCHEMA_FILE, report
from {{ cookiecutter.package_name }}.commands.training import train

pytestmark = pytest.mark.integration


def test_omitted_feature_lists_are_inferred_trained_on_and_recorded(isolated_config) -> None:
    data = isolated_config.data.model_copy(update={"numeric_features": [], "categorical_features": []})
    config = isolated_config.model_copy(update={"data": data})
    table = pd.read_csv(config.data_path)
    unused = {config.data.target, *config.data.ignore_columns}
    # Independent of the loader: pandas' own reading of the column types.
    numeric = [c for c in table.columns if c not in unused and pd.api.types.is_numeric_dtype(table[c])]
    categorical = [c for c in table.columns if c not in unused and c not in numeric]

    trained = train(config, force=True)
    assert trained.dataset.schema.inferred
    assert (list(trained.dataset.schema.numeric), list(trained.dataset.schema.categorical)) == (
        numeric,
        categorical,
    )
    assert set(trained.model.feature_names_in_) == set(numeric + categorical)

    bundle = report(config, trained.registered.version)
    recorded = json.loads((bundle.directory / SCHEMA_FILE).read_text())
    assert recorded == {
        "numeric": numeric,
        "categorical": categorical,
        "ignored": recorded["ignored"],
        "inferred": True,
    }
    assert SCHEMA_FILE in bundle.manifest["files"]
    assert "types inferred from the data" in (bundle.directory / "MODEL_CARD.md").read_text()
