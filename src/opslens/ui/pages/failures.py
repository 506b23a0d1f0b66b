"""The Known failures page: failures against groups and ranking (logic in opslens.ui.views.failures)."""

from opslens.ui.views.failures import render

render()
