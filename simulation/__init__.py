"""Discrete-event simulation of hospital and regional patient flow."""
