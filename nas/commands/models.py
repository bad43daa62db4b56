"""``nas mixers``, ``nas presets``, ``nas profile`` and ``nas demo``: inspect the model zoo."""

from __future__ import annotations

import argparse
import time

from tqdm import tqdm

# torch and the model zoo are imported inside each command, so that ``nas --help`` stays fast


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("mixers", help="list registered token mixers and their knobs")
    p.set_defaults(func=_mixers)

    p = sub.add_parser("presets", help="list the seed designs")
    p.set_defaults(func=_presets)

    p = sub.add_parser("profile", help="parameters and MACs of architectures")
    p.add_argument("arch", nargs="+", help="preset names or arch.yaml paths")
    p.add_argument("--resolution", type=int, default=None, help="input side (default: spec's)")
    p.set_defaults(func=_profile)

    p = sub.add_parser(
        "demo", help="build every preset, profile it and run a forward/backward step on CPU"
    )
    p.add_argument("--resolution", type=int, default=64, help="input side of the smoke step")
    p.set_defaults(func=_demo)


def _mixers(args: argparse.Namespace) -> int:
    from nas.mixers import get_mixer, list_mixers

    names = list_mixers()
    width = max(map(len, names))
    for name in names:
        knobs = ", ".join(f"{k}={v!r}" for k, v in get_mixer(name).defaults.items())
        print(f"{name:{width}s}  {knobs}")
    return 0


def _presets(args: argparse.Namespace) -> int:
    from nas.arch import list_presets, resolve_spec

    for name in list_presets():
        stages = resolve_spec(name).stages
        print(f"{name:20s} " + " | ".join(s.mixer.name for s in stages))
    return 0


def _print_profiles(rows: list[tuple[str, int, int, str]]) -> None:
    """One line per architecture; counts with the prefix that fits (``850 kMACs``, not 0.00 G)."""
    from nas import units

    print(f"{'architecture':22s} {'params':>14s} {'MACs':>12s}  note")
    for name, params, macs, note in rows:
        print(f"{name:22s} {units.params(params):>14s} {units.macs(macs):>12s}  {note}")


def _profile(args: argparse.Namespace) -> int:
    from nas.arch import resolve_spec

    specs = [resolve_spec(arch) for arch in args.arch]  # every bad file fails before torch loads
    from nas.models.profile import profile

    rows = []
    for spec in tqdm(specs, desc="profiling", unit="arch", leave=False):
        prof = profile(spec, args.resolution)
        rows.append((spec.name, prof.params, prof.macs, f"at {prof.resolution[0]} px"))
    _print_profiles(rows)
    return 0


def _demo(args: argparse.Namespace) -> int:
    import torch

    from nas.models import build_model, list_presets
    from nas.models.profile import profile

    torch.manual_seed(0)
    rows = []
    side = args.resolution
    for name in tqdm(list_presets(), desc="presets", unit="model"):
        prof = profile(name)
        model = build_model(name, num_classes=10)
        x = torch.randn(2, 3, side, side)
        start = time.perf_counter()
        model(x).logsumexp(dim=1).mean().backward()
        step = time.perf_counter() - start
        rows.append((name, prof.params, prof.macs, f"fwd+bwd at {side}px: {step:.2f}s"))
    _print_profiles(rows)
    return 0
