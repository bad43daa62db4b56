"""What every view shares: the page context, mixer colours, number formats and escaping.

Every string read from a store is untrusted (a crafted store is a file anyone can hand over):
it reaches markdown through :func:`md` or :func:`code`, HTML through ``html.escape`` and plotly's
pseudo-HTML text through :func:`plain`.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

import pandas as pd
import plotly.express as px

from nas import units
from nas.mixers.registry import list_mixers

# One colour per mixer, fixed, so a mixer looks the same on every chart and drawing; dark enough
# for white labels. Mixers registered later get the remaining colours of a qualitative palette.
MIXER_COLORS: dict[str, str] = {
    "identity": "#8E8E8E",
    "pooling": "#8C564B",
    "sepconv": "#1F77B4",
    "attention": "#D62728",
    "hyena_pixel": "#2CA02C",
    "hyena": "#138D75",
    "gnconv": "#9467BD",
    "parc": "#E67E22",
    "dynamic_filter": "#C2185B",
    "global_filter": "#7B8D1E",
}
MIXER_COLORS.update(
    zip(
        [m for m in list_mixers() if m not in MIXER_COLORS],
        [c for c in px.colors.qualitative.Dark24 if c not in MIXER_COLORS.values()],
        strict=False,
    )
)
MIXER_SHORT = {
    "identity": "id",
    "pooling": "pool",
    "sepconv": "sep",
    "attention": "attn",
    "hyena_pixel": "hpx",
    "hyena": "hyena",
    "gnconv": "gn",
    "parc": "parc",
    "parc_v2": "parc2",
    "dynamic_filter": "df",
    "global_filter": "gf",
}
STATE_COLORS = {"COMPLETE": "#4C78A8", "PRUNED": "#9D9D9D", "FAIL": "#E45756", "RUNNING": "#F58518"}
FRONT_COLOR = "#1F3B73"
KNEE_COLOR = "#F58518"
SEED_COLOR = "#54A24B"


@dataclass(frozen=True)
class Context:
    """The store and search a view shows, with the search's trials already loaded."""

    url: str
    version: str
    search: pd.Series
    trials: pd.DataFrame
    searches: pd.DataFrame

    @property
    def search_id(self) -> int:
        return int(self.search["id"])

    @property
    def objectives(self) -> list[str]:
        return list(self.search["objectives"])

    @property
    def directions(self) -> list[str]:
        return list(self.search["directions"])


def mixer_color(name: str) -> str:
    return MIXER_COLORS.get(name, "#BAB0AC")


def is_fraction(values: pd.Series) -> bool:
    """Accuracies are stored as fractions (0-1); anything above 1 is already in percent."""
    finite = values.dropna()
    return finite.empty or float(finite.max()) <= 1.0


def pct(value: float | None, fraction: bool = True) -> str:
    if value is None or pd.isna(value):
        return "—"
    return f"{value * 100:.2f} %" if fraction else f"{value:.2f} %"


# Every ASCII punctuation character: CommonMark lets any of them be backslash-escaped, which
# covers markdown syntax, raw HTML and Streamlit's own :color[...], :emoji: and $math$.
MARKDOWN_SPECIAL = re.compile(r"([!-/:-@\[-`{-~])")


def md(text: object) -> str:
    """``text`` as literal markdown: no markup, link, HTML tag or Streamlit directive in it acts."""
    return MARKDOWN_SPECIAL.sub(r"\\\1", str(text))


def code(text: object) -> str:
    """``text`` as a markdown code span, fenced by more backticks than any run inside it."""
    text = str(text).replace("\n", " ")
    runs = [len(r) for r in re.findall(r"`+", text)]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def plain(text: object) -> str:
    """``text`` for plotly's hover, legend and label text, which reads a few HTML tags.

    Quotes stay: plotly decodes ``&lt;``/``&gt;``/``&amp;`` but shows ``&quot;`` as written.
    """
    return html.escape(str(text), quote=False)


def objective_text(name: str, value: float | None, fraction: bool, unit: bool = True) -> str:
    """An objective's value in its unit (accuracy in percent, whether stored as a fraction or
    not; ``unit`` False drops img/s, for a tile whose label says it)."""
    if name == "accuracy":
        return pct(value, fraction)
    return units.objective(name, value, unit)
