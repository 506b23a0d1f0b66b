"""The Runs page (logic in opslens.ui.views.runs)."""

from opslens.ui.views.runs import render

render()
