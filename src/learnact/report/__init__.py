"""Figures and tables. Plot functions take data and return figures; they never train."""
