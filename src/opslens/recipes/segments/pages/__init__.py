"""The segments recipe's app pages (``RECIPE.ui_pages``): Monitoring."""
