"""Data loading and validation, features, training and evaluation: the part data scientists edit."""
