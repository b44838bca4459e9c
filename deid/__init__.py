"""The DE-ID layer: the privacy kernel between each hospital and the region."""
