"""The baseline for the framework-overhead benchmark: the same work written by hand in one script.

Reads the demo CSV, fits the same preprocessing + HistGradientBoosting pipeline on the same split,
computes the same held-out metrics and logs params, metrics and a registered model to MLflow.
Usage: python bare_training.py DATA.csv TRACKING_URI ARTIFACT_DIR
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import mlflow
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

warnings.simplefilter("ignore")
NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
CATEGORICAL = [
    "workclass",
    "education",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "native-country",
]


def main(data: str, tracking_uri: str, artifacts: str) -> None:
    frame = pd.read_csv(data)
    labels = (frame["income"] == ">50K").astype(int)
    features = frame[NUMERIC + CATEGORICAL].astype({column: "float64" for column in NUMERIC})
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.25, stratify=labels, random_state=42
    )
    model = Pipeline(
        [
            (
                "preprocess",
                ColumnTransformer(
                    [
                        (
                            "numeric",
                            Pipeline(
                                [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
                            ),
                            NUMERIC,
                        ),
                        (
                            "categorical",
                            Pipeline(
                                [
                                    ("impute", SimpleImputer(strategy="constant", fill_value="missing")),
                                    (
                                        "encode",
                                        OneHotEncoder(
                                            handle_unknown="infrequent_if_exist",
                                            min_frequency=10,
                                            sparse_output=False,
                                        ),
                                    ),
                                ]
                            ),
                            CATEGORICAL,
                        ),
                    ]
                ),
            ),
            (
                "model",
                HistGradientBoostingClassifier(
                    max_iter=200, learning_rate=0.1, max_leaf_nodes=31, random_state=42
                ),
            ),
        ]
    ).fit(x_train, y_train)
    scores = model.predict_proba(x_test)[:, 1]
    predictions = (scores >= 0.5).astype(int)
    metrics = {
        "accuracy": accuracy_score(y_test, predictions),
        "balanced_accuracy": balanced_accuracy_score(y_test, predictions),
        "roc_auc": roc_auc_score(y_test, scores),
        "f1": f1_score(y_test, predictions),
        "precision": precision_score(y_test, predictions),
        "recall": recall_score(y_test, predictions),
        "log_loss": log_loss(y_test, scores),
    }
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.create_experiment("bare", artifact_location=Path(artifacts).resolve().as_uri())
    mlflow.set_experiment("bare")
    with mlflow.start_run():
        mlflow.log_params(model.named_steps["model"].get_params())
        mlflow.log_metrics(metrics)
        mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="bare",
            input_example=x_test.head(5),
            pip_requirements=["scikit-learn", "pandas", "mlflow"],
            skops_trusted_types=[
                "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
                "numpy.dtype",
            ],
        )
    print(f"roc_auc={metrics['roc_auc']:.4f}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
