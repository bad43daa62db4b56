"""Human number formats (``nas.units``) and the CLI lines that use them, exact strings."""

import math

import pytest

from nas import units
from nas.commands.models import _print_profiles
from nas.commands.search import _format_value, _values_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (0.0004, "0.0004"),
        (0.00012345, "0.000123"),
        (1e-7, "0.0000001"),
        (0.5, "0.5"),
        (12.0, "12"),
        (12.345, "12.3"),
        (999.4, "999"),
        (999.5, "1,000"),  # rounds up to 1000: thousands style, not "1e+03"
        (1000, "1,000"),
        (10010, "10,010"),  # was 1.001e+04 with .4g
        (1.5e9, "1,500,000,000"),
        (-10010, "-10,010"),
        (-0.0123, "-0.0123"),
        (None, "—"),
        (math.nan, "—"),
        (math.inf, "∞"),
        (-math.inf, "-∞"),
    ],
)
def test_number(value, text) -> None:
    assert units.number(value) == text


def test_number_digits() -> None:
    assert units.number(3.14159, 5) == "3.1416"
    assert units.number(0.123456, 2) == "0.12"


@pytest.mark.parametrize(
    ("count", "macs", "params"),
    [
        (0, "0 MACs", "0 params"),
        (5, "5 MACs", "5 params"),
        (850_000, "850 kMACs", "850 k params"),
        (12_340_000, "12.3 MMACs", "12.3 M params"),
        (999_600_000, "1 GMACs", "1 G params"),  # rounding carries into the next prefix
        (1_800_000_000, "1.8 GMACs", "1.8 G params"),
        (2.5e12, "2.5 TMACs", "2.5 T params"),
        (None, "—", "—"),
    ],
)
def test_counts_take_the_prefix_that_fits(count, macs, params) -> None:
    assert units.macs(count) == macs
    assert units.params(count) == params


def test_objectives_in_their_study_units() -> None:
    assert units.objective("accuracy", 0.9412) == "94.12 %"
    assert units.objective("throughput", 10010.0) == "10,010 img/s"
    assert units.objective("throughput", 10010.0, unit=False) == "10,010"
    assert units.objective("params", 1.2) == "1.2 M params"  # stored in M
    assert units.objective("macs", 0.00085) == "850 kMACs"  # stored in G: not "0.00 GMACs"
    assert units.objective("score", 1234.0) == "1,234"
    assert units.objective("macs", math.nan) == "—"


def test_cli_front_cells_and_export_line() -> None:
    assert _format_value("throughput", 9800.0, 10010.4, 10100.0) == "10,010 [9,800-10,100]"
    assert _format_value("throughput", 512.3, 512.3, 512.3) == "512"
    assert _format_value("macs", 0.0123, 0.0123, 0.0123) == "12.3 MMACs"
    assert _format_value("accuracy", 0.932, 0.9412, 0.950) == " 94.1 ± 0.9"
    assert _values_text({"accuracy": 0.9412, "throughput": 10010.0}) == (
        "accuracy=94.12 %, throughput=10,010 img/s"
    )


def test_profile_table_of_a_laptop_scale_network(capsys) -> None:
    _print_profiles([("tiny", 52_000, 850_000, "at 32 px")])
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["architecture", "params", "MACs", "note"]
    assert row.split() == ["tiny", "52", "k", "params", "850", "kMACs", "at", "32", "px"]


def test_constraint_reasons_show_sizes_in_units_that_fit() -> None:
    """A laptop-scale network over a small MACs bound read "0.000 GMACs > max_gmacs 0.0001"."""
    from nas.search.config import Constraints
    from nas.search.trainable import constraint_violation

    assert (
        constraint_violation(Constraints(max_gmacs=0.0001), 100, 345_000, None)
        == "constraint: 345 kMACs > max_gmacs 0.0001"
    )
    assert (
        constraint_violation(Constraints(max_params_m=2.0), 2_345_678, 0, None)
        == "constraint: 2.35 M params > max_params_m 2.0"
    )
