"""kprov: provisioning for the Knewton adaptive-learning API (v0)."""

__version__ = "0.4.0"
