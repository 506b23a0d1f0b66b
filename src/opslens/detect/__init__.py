"""Anomaly detectors: point anomalies in one series, rare devices in a fleet.

Every score in this package follows one rule: higher score = more anomalous.
"""
