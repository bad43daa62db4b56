"""Optuna samplers for the search: multivariate TPE, NSGA-II or random."""

from __future__ import annotations

import warnings

import optuna

from nas.search.config import SamplerSettings


def create_sampler(settings: SamplerSettings, seed: int) -> optuna.samplers.BaseSampler:
    """TPE is multivariate and grouped: the space is conditional (knobs exist only for the chosen
    mixer), and ``group=True`` models each set of co-occurring parameters jointly."""
    if settings.kind == "tpe":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(
                n_startup_trials=settings.n_startup_trials,
                multivariate=True,
                group=True,
                seed=seed,
            )
    if settings.kind == "nsga2":
        return optuna.samplers.NSGAIISampler(population_size=settings.population_size, seed=seed)
    return optuna.samplers.RandomSampler(seed=seed)
