"""The residual recipe's app pages (``RECIPE.ui_pages``): Residuals and Live."""
