"""Measurements of the method's behaviour on real images (numbers, not tests)."""
