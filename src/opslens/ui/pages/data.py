"""The Data page: read, name, filter and use a table (the logic is in opslens.ui.views.data)."""

from opslens.ui.views.data import render

render()
