"""The prediction service: HTTP app, routing, flags, metrics and prediction log.

Kept light to import: it must not pull in shap, matplotlib, the git layer or the GitHub client, so a
serving process starts fast and carries only what answering requests needs.
"""
