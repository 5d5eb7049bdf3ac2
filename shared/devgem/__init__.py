"""Devgem: the shared package every function imports."""
