"""The distribution recipe's app pages (``RECIPE.ui_pages``): Patterns."""
