"""Contracts every recipe and consumer shares; imports nothing heavy.

``recipe``     Recipe, Stage, Output, Out, StageContext, FileInput, Demo, ModelArtifact
``predictor``  the Predictor protocol and BasePredictor
``facts``      FactsModel: the typed facts a run states
``narrative``  Narrative, Section, Table: a report's text
``columns``    the one column check (required, numeric, time axis)
``frames``     polars inside, pandas converted at the edges
"""
