"""The Series page: profile, decomposition and point anomalies (the logic is in opslens.ui.views.series)."""

from opslens.ui.views.series import render

render()
