"""Tests of the DE-ID layer (deid/)."""
