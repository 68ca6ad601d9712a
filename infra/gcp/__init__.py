"""The GCP platform: one ComponentResource per capability, wired in `platform.py`."""
