"""The dashboard's pages: Pareto front, progress, one trial, export."""
