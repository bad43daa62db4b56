"""Tabular benchmarks of a space: build a table once, replay seeded searches against it."""
