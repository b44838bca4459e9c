"""The DE-ID layer: the privacy kernel between each hospital and the region."""

__version__ = "0.1.0"
