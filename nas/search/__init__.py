"""The multi-objective architecture search: space, study driver, Ray Tune adapters, pruners.

Layout follows Optuna's separation: ``space`` (what is sampled), ``samplers``, ``pruners``,
``pareto`` (fronts and hypervolume), ``driver`` + ``ray_adapters`` (execution), ``runner``.
"""
