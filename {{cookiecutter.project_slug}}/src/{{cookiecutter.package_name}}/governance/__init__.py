"""Evidence and policy: explainability, fairness, model cards and the promotion gate."""
