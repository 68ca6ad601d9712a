"""mlops-platform policy rules: plain functions over resource type and props,
wrapped as CrossGuard policies in one place (pack.py)."""
