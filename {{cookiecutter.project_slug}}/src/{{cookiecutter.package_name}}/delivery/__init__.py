"""Registry, promotion, deploy and serving: how a trained model reaches an environment."""
