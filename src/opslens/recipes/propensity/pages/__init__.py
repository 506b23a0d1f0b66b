"""The propensity recipe's app pages (``RECIPE.ui_pages``): Propensity."""
