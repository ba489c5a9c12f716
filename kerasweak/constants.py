"""Constants shared by the data readers and the backend-agnostic losses and metrics, with no dependencies."""

IGNORE_LABEL = 255
"""Mask value of pixels that belong to no class (e.g. black pixels in Aerial Dubai)."""
