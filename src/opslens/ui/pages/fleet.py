"""The Fleet page: rare devices and behaviour groups (the logic is in opslens.ui.views.fleet)."""

from opslens.ui.views.fleet import render

render()
