"""Streamlit dashboard ranking search trials on accuracy-versus-throughput Pareto fronts."""
