"""Policies: the file model, its expression language, and binding to the catalogue."""
