"""Narrators turn a run's facts into a report's text; ``template`` is offline and deterministic."""
