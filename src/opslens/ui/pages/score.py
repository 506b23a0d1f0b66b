"""The Score page (logic in opslens.ui.views.score)."""

from opslens.ui.views.score import render

render()
