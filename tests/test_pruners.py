"""Pruner decisions on hand-made rung data in real in-memory Optuna studies."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from nas.search.pruners import (
    LEARNING_CURVE_ATTR,
    ParetoSuccessiveHalvingPruner,
    create_pruner,
    learning_curve,
)

MAX, MIN = "maximize", "minimize"


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _study(*directions: str, storage: str | None = None) -> optuna.Study:
    return optuna.create_study(directions=list(directions or (MAX, MAX)), storage=storage)


def _add(
    study: optuna.Study,
    curve: dict[int, float],
    known: dict | None,
    state: TrialState = TrialState.PRUNED,
) -> None:
    """A finished trial (pruned or complete) with its learning curve and known objectives."""
    values = None
    if state == TrialState.COMPLETE:
        values = [curve[max(curve)]] + [0.0] * (len(study.directions) - 1)
    study.add_trial(
        optuna.trial.create_trial(
            state=state,
            values=values,
            intermediate_values=curve,
            user_attrs={} if known is None else {"objectives_known": known},
            distributions={},
            params={},
        )
    )


def _running(study: optuna.Study, curve: dict[int, float], known: dict | None) -> FrozenTrial:
    """A RUNNING trial written through the storage, as the search driver does."""
    trial = study.ask()
    storage = study._storage
    for step, value in curve.items():
        storage.set_trial_intermediate_value(trial._trial_id, step, value)
    if known is not None:
        storage.set_trial_user_attr(trial._trial_id, "objectives_known", known)
    return storage.get_trial(trial._trial_id)


def _frozen(study: optuna.Study, number: int) -> FrozenTrial:
    return study.get_trials(deepcopy=False)[number]


def _rung_study() -> tuple[optuna.Study, dict[str, FrozenTrial]]:
    """Eight trials at rung epoch 1 (accuracy, throughput), in every state.

    Front: a (.9, 100), b (.8, 200), c (.7, 300), y (.1, 1000). n = 8, eta = 3: 2 promoted.
    Crowding on the front: a and y are extremes (inf), c = .875 + .889, b = .25 + .222.
    """
    study = _study()
    _add(study, {1: 0.9}, {1: 100.0}, TrialState.COMPLETE)  # a
    _add(study, {1: 0.8}, {1: 200.0}, TrialState.PRUNED)  # b
    trials = {}
    trials["c"] = _running(study, {1: 0.7}, {1: 300.0})
    for acc, thr in [(0.5, 50.0), (0.4, 40.0), (0.3, 30.0)]:
        _add(study, {1: acc}, {1: thr})
    trials["x"] = _running(study, {1: 0.6}, {1: 90.0})  # dominated by a, b and c
    trials["y"] = _running(study, {1: 0.1}, {1: 1000.0})  # worst accuracy, best throughput
    trials["a"], trials["b"] = _frozen(study, 0), _frozen(study, 1)
    return study, trials


def test_dominated_pruned_and_fastest_promoted_unlike_asha() -> None:
    study, t = _rung_study()
    pruner = ParetoSuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    assert pruner.prune(study, t["x"])  # three trials dominate it
    assert not pruner.prune(study, t["y"])  # on the front, at its throughput end
    assert not pruner.prune(study, t["a"])  # on the front, at its accuracy end
    # on the front too, but 4 front members compete for 2 places: crowding decides
    assert pruner.prune(study, t["c"])
    assert pruner.prune(study, t["b"])

    # Single-objective ASHA by accuracy (Optuna's own pruner) stops y.
    single = optuna.create_study(direction=MAX)
    for trial in study.get_trials():
        acc = trial.intermediate_values[1]
        if trial.number != t["y"].number:
            single.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.PRUNED,
                    intermediate_values={1: acc},
                    system_attrs={"completed_rung_0": acc},
                    distributions={},
                    params={},
                )
            )
    asha = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    y_single = _running(single, {1: 0.1}, None)
    assert asha.prune(single, y_single)


def test_between_rungs_and_without_values_never_pruned() -> None:
    study, t = _rung_study()
    pruner = ParetoSuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    assert pruner.rung_index(2) is None
    worst = _running(study, {1: 0.0, 2: 0.0}, {1: 1.0})  # dominated at rung 1, now at 2
    assert not pruner.prune(study, worst)
    assert not pruner.prune(study, _running(study, {}, {1: 1.0}))
    # first trial to reach rung 3: competes with itself only and is promoted
    assert not pruner.prune(study, _running(study, {1: 0.0, 2: 0.0, 3: 0.0}, {1: 1.0}))
    # the same trial at rung 1 is pruned
    assert pruner.prune(study, _running(study, {1: 0.0}, {1: 1.0}))


def test_rung_positions() -> None:
    default = ParetoSuccessiveHalvingPruner()
    assert [default.rung_step(k) for k in range(4)] == [1, 3, 9, 27]
    pruner = ParetoSuccessiveHalvingPruner(
        min_resource=2, reduction_factor=3, min_early_stopping_rate=1
    )
    assert [pruner.rung_step(k) for k in range(3)] == [6, 18, 54]
    assert [pruner.rung_index(s) for s in (0, 2, 6, 12, 18, 54, 55)] == [
        None,
        None,
        0,
        None,
        1,
        2,
        None,
    ]
    study = _study()
    for acc in (0.9, 0.8, 0.7):
        _add(study, {2: acc, 6: acc}, {1: 500.0})
    early = _running(study, {2: 0.1}, {1: 100.0})
    assert not pruner.prune(study, early)  # epoch 2 is min_resource, not a rung here
    assert pruner.prune(study, _running(study, {2: 0.1, 6: 0.1}, {1: 100.0}))


def test_ties_favour_the_trial() -> None:
    study = _study()
    for _ in range(3):
        _add(study, {1: 0.5}, {1: 100.0})
    _add(study, {1: 0.2}, {1: 50.0})
    _add(study, {1: 0.1}, {1: 40.0})
    pruner = ParetoSuccessiveHalvingPruner()
    # six at the rung, two places: four identical front points all rank first
    assert not pruner.prune(study, _running(study, {1: 0.5}, {1: 100.0}))
    assert pruner.prune(study, _running(study, {1: 0.2}, {1: 50.0}))


def test_minimised_objective_and_accuracy_not_first() -> None:
    study = _study(MIN, MAX)  # latency (known before training), accuracy (learning curve)
    for latency, acc in [(10.0, 0.9), (12.0, 0.85), (20.0, 0.8), (30.0, 0.5), (40.0, 0.4)]:
        _add(study, {1: acc}, {0: latency})
    pruner = ParetoSuccessiveHalvingPruner(accuracy_objective=1)
    assert pruner.prune(study, _running(study, {1: 0.7}, {0: 25.0}))
    assert not pruner.prune(study, _running(study, {1: 0.3}, {"0": 1.0}))  # fastest
    with pytest.raises(ValueError, match="accuracy_objective=2"):
        ParetoSuccessiveHalvingPruner(accuracy_objective=2).prune(
            study, _running(study, {1: 0.3}, {0: 1.0})
        )


def test_invalid_competitors_ignored_and_own_problems() -> None:
    study = _study()
    for _ in range(3):
        _add(study, {1: float("nan")}, {1: 10_000.0})
    _add(study, {1: 0.99}, None)  # no known objectives: cannot be placed
    _add(study, {1: 0.99}, {1: float("nan")})
    pruner = ParetoSuccessiveHalvingPruner()
    x = _running(study, {1: 0.5}, {1: 50.0})
    assert not pruner.prune(study, x)  # the only valid trial at the rung
    _add(study, {1: 0.9}, {1: 100.0})
    # two valid trials, one place: pruned (seven competitors would give two places)
    assert pruner.prune(study, x)
    assert pruner.prune(study, _running(study, {1: float("nan")}, {1: 1e9}))
    with pytest.raises(ValueError, match="objectives_known"):
        pruner.prune(study, _running(study, {1: 0.5}, None))


def test_string_keys_from_a_json_storage(tmp_path) -> None:
    study = _study(MAX, MAX, storage=f"sqlite:///{tmp_path / 'study.db'}")
    _add(study, {1: 0.9}, {1: 100.0})
    _add(study, {1: 0.8}, {1: 200.0})
    fast = _running(study, {1: 0.1}, {1: 1000.0})
    slow = _running(study, {1: 0.1}, {1: 10.0})
    assert fast.user_attrs["objectives_known"] == {"1": 1000.0}
    pruner = ParetoSuccessiveHalvingPruner()
    assert not pruner.prune(study, fast)
    assert pruner.prune(study, slow)


@pytest.mark.parametrize("direction", [MAX, MIN])
def test_single_objective_matches_optuna_asha(direction: str) -> None:
    rng = np.random.default_rng(0 if direction == MAX else 1)
    for _ in range(40):
        eta = int(rng.integers(2, 5))
        values = np.round(rng.random(int(rng.integers(0, 12))), 1).tolist()  # ties
        mine, theirs = _study(direction), optuna.create_study(direction=direction)
        for v in values:
            _add(mine, {1: v}, None)
            theirs.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.PRUNED,
                    intermediate_values={1: v},
                    system_attrs={"completed_rung_0": v},
                    distributions={},
                    params={},
                )
            )
        v = float(np.round(rng.random(), 1))
        expected = optuna.pruners.SuccessiveHalvingPruner(
            min_resource=1, reduction_factor=eta
        ).prune(theirs, _running(theirs, {1: v}, None))
        pruner = create_pruner("pareto_sh", 1, reduction_factor=eta)
        assert pruner.prune(mine, _running(mine, {1: v}, None)) == expected


def test_create_pruner_kinds_and_kwargs() -> None:
    assert isinstance(create_pruner("pareto_sh", 2), ParetoSuccessiveHalvingPruner)
    assert isinstance(create_pruner("none", 3), optuna.pruners.NopPruner)
    assert isinstance(create_pruner("median", 1), optuna.pruners.MedianPruner)
    assert isinstance(
        create_pruner("successive_halving", 1), optuna.pruners.SuccessiveHalvingPruner
    )
    assert isinstance(create_pruner("hyperband", 1), optuna.pruners.HyperbandPruner)
    moasha = create_pruner("pareto_sh", 2, min_resource=2, reduction_factor=4)
    assert moasha.rung_step(1) == 8
    median = create_pruner("median", 1, n_startup_trials=3, n_warmup_steps=2)
    assert (median._n_startup_trials, median._n_warmup_steps) == (3, 2)


def test_create_pruner_errors() -> None:
    for kind in ("median", "successive_halving", "hyperband"):
        with pytest.raises(ValueError, match=rf"'{kind}' is single-objective.*'pareto_sh'"):
            create_pruner(kind, 2)
    with pytest.raises(ValueError, match="did you mean 'pareto_sh'"):
        create_pruner("pareto-sh", 2)
    with pytest.raises(ValueError, match="expected one of pareto_sh, median"):
        create_pruner("bogus", 1)
    with pytest.raises(ValueError, match="'reduction_facter' \\(did you mean 'reduction_factor'"):
        create_pruner("pareto_sh", 2, reduction_facter=3)
    with pytest.raises(ValueError, match="does not accept 'min_resource'; accepted: no arg"):
        create_pruner("none", 1, min_resource=1)
    with pytest.raises(ValueError, match="n_objectives"):
        create_pruner("none", 0)
    with pytest.raises(ValueError, match="reduction_factor must be an int >= 2"):
        ParetoSuccessiveHalvingPruner(reduction_factor=1)


def test_cached_rung_points_decide_as_a_fresh_read() -> None:
    """Finished trials' rung points are read once and kept: over a long asynchronous run on two
    studies sharing one pruner (trials starting, reporting rungs and finishing in any order,
    finished competitors without known objectives or with NaN, finished trials judged again),
    every decision equals that of a new pruner reading the whole study."""
    rng = np.random.default_rng(0)
    pruner = ParetoSuccessiveHalvingPruner(min_resource=1, reduction_factor=2)
    storage = optuna.storages.InMemoryStorage()
    studies = [optuna.create_study(directions=[MAX, MIN], storage=storage) for _ in range(2)]
    running: list[list[list]] = [[], []]  # per study: [trial, learning curve so far]
    decisions = []

    def decide(study: optuna.Study, frozen: FrozenTrial) -> bool:
        expected = ParetoSuccessiveHalvingPruner(min_resource=1, reduction_factor=2).prune(
            study, frozen
        )
        assert pruner.prune(study, frozen) == expected
        decisions.append(expected)
        return expected

    for _ in range(600):
        k = int(rng.integers(2))
        study, live = studies[k], running[k]
        roll = rng.random()
        if roll < 0.05:  # a finished competitor the pruner must leave out
            curve = {1: float("nan") if rng.random() < 0.5 else 0.5, 2: 0.6}
            _add(study, curve, None if rng.random() < 0.5 else {1: 10.0})
        elif roll < 0.1 and study.trials:  # a finished trial judged again (its own point cached)
            done = [
                t
                for t in study.get_trials(deepcopy=False)
                if t.state.is_finished() and LEARNING_CURVE_ATTR in t.user_attrs
            ]
            if done and len(learning_curve(done[-1])) < 3:
                decide(study, done[-1])
        elif roll < 0.4 and len(live) < 4:
            trial = study.ask()
            trial.set_user_attr("objectives_known", {1: float(rng.choice([10.0, 20.0, 30.0]))})
            live.append([trial, {}])
        elif live:
            entry = live[int(rng.integers(len(live)))]
            trial, curve = entry
            epoch = len(curve) + 1
            accuracy = round(float(rng.random()), 1)
            curve[str(epoch)] = accuracy  # as the driver keeps it in multi-objective studies
            trial.set_user_attr(LEARNING_CURVE_ATTR, curve)
            pruned = epoch in (1, 2) and decide(study, study._storage.get_trial(trial._trial_id))
            if pruned or epoch == 4:
                live.remove(entry)
                if pruned:
                    study.tell(trial, state=TrialState.PRUNED)
                else:
                    study.tell(trial, [accuracy, 1.0])
    assert len(decisions) > 150 and 0.1 < np.mean(decisions) < 0.9
