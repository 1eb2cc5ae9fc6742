"""Monitoring: drift against the reference profile, live performance and fairness, canary analysis."""
