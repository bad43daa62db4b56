"""Zero-cost proxies: scores of an untrained network, computed from one batch at initialisation.

Training-free NAS ranks candidates by a statistic of the freshly initialised network instead of
its accuracy after training (Abdelfattah et al. 2021, "Zero-Cost Proxies for Lightweight NAS";
Mellor et al. 2021, "Neural Architecture Search without Training"). Each proxy costs one forward
and at most one backward pass, against minutes of proxy training per candidate. Whether any of
them ranks *token-mixer* MetaFormers well is an open question, so the benchmark scores every
architecture of its table with these proxies and measures their rank correlation with the
trained accuracies, beside the trivial ``params`` and ``macs`` baselines that a proxy has to beat
to be worth anything.

Proxies (higher = predicted better; each is ``(model, inputs, targets) -> float``):

* ``synflow`` (Tanaka et al. 2020): the network with every parameter replaced by its absolute
  value, in float64, eval mode (no dropout or drop-path), with BatchNorm and InstanceNorm
  bypassed (Abdelfattah's ``bn=False``: the statistics of a constant input have zero variance),
  fed one all-ones image; ``R = sum(output)`` and the score is ``sum |theta * dR/dtheta|``.
  LayerNorms (and GroupNorms) stay, as in Abdelfattah's code, which bypasses BatchNorm only:
  they normalise over channels, where an all-ones image is not constant.
* ``naswot`` (Mellor et al.): each activation module of the ReLU family (ReLU, GELU, StarReLU,
  ...) contributes the binary code ``input > 0`` of every sample; with ``c`` the concatenated
  codes, ``K = c c^T + (1 - c)(1 - c)^T`` (units minus Hamming distance) and the score is
  ``log|det K|``; ``-inf`` when ``K`` is singular (e.g. two identical images).
* ``grad_norm``: the sum over parameter tensors of the L2 norm of the cross-entropy gradient.
* ``snip`` (Lee et al. 2019): ``sum |theta * dL/dtheta|`` for the cross-entropy ``L`` of the batch.

Abdelfattah's code sums over Conv2d/Linear weights only; here every parameter counts, so mixers
whose weights live elsewhere (spectral filters, implicit-filter encodings, layer scales) are
scored like the rest. ``naswot``, ``grad_norm`` and ``snip`` run in train mode, like the
originals on a fresh network. Every proxy works on a deep copy of the model, so the caller's
parameters, gradients, modes and caches are never touched.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.arch.spec import ArchSpec
from nas.errors import NasError
from nas.layers.activations import SquaredReLU, StarReLU
from nas.typed_config import suggest


class ZeroCostError(NasError):
    """An unknown proxy name, a model the proxy cannot score, or an impossible probe batch."""


# Activations gated at zero: NASWOT's code of a unit is whether the activation's input is > 0.
HOOKED_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    StarReLU,
    SquaredReLU,
)
# Normalisations over the batch or the spatial map, which an all-ones input makes degenerate.
SYNFLOW_BYPASSED: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
)


def _params(model: nn.Module) -> list[nn.Parameter]:
    params = [p for p in model.parameters() if p.dtype.is_floating_point]
    for p in params:
        p.requires_grad_(True)
    return params


def _grads(loss: Tensor, params: list[nn.Parameter]) -> list[Tensor]:
    """Gradients of ``loss`` (zeros for parameters it does not reach), leaving ``.grad`` alone."""
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]


def _clone(model: nn.Module, train: bool) -> nn.Module:
    """A deep copy of ``model`` without gradients, in train or eval mode: proxies work on it,
    so the caller's model keeps its parameters, gradients, modes and caches."""
    clone = copy.deepcopy(model)
    clone.train(train)
    for p in clone.parameters():
        p.grad = None
    return clone


def _ce_loss(model: nn.Module, inputs: Tensor, targets: Tensor) -> Tensor:
    return F.cross_entropy(model(inputs), targets)


def synflow(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Synaptic flow of the sign-linearised network on one all-ones image (``targets`` unused).

    Batch size does not matter: one image of ``inputs``' per-sample shape is fed (as in Tanaka's
    and Abdelfattah's code); in eval mode a batch of ``B`` such images would scale it by ``B``.
    """
    del targets
    net = _clone(model, train=False)
    net.double()
    params = _params(net)
    with torch.no_grad():
        for p in params:
            p.abs_()
    hooks = [
        m.register_forward_hook(lambda _m, args, _out: args[0])
        for m in net.modules()
        if isinstance(m, SYNFLOW_BYPASSED)
    ]
    try:
        ones = torch.ones((1, *inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
        grads = _grads(net(ones).sum(), params)
    finally:
        for h in hooks:
            h.remove()
    return float(sum((p.detach() * g).abs().sum() for p, g in zip(params, grads, strict=True)))


def naswot_kernel(model: nn.Module, inputs: Tensor) -> Tensor:
    """NASWOT's ``(B, B)`` float64 kernel: summed over the hooked activations, the number of
    units on which two samples' codes ``input > 0`` agree. Train mode, no gradients."""
    batch = inputs.shape[0]
    kernel = torch.zeros(batch, batch, dtype=torch.float64, device=inputs.device)

    def hook(_module: nn.Module, args: tuple[Any, ...], _out: Any) -> None:
        nonlocal kernel
        codes = (args[0].detach().reshape(batch, -1) > 0).to(torch.float64)
        kernel = kernel + codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T

    net = _clone(model, train=True)
    acts = [m for m in net.modules() if isinstance(m, HOOKED_ACTIVATIONS)]
    if not acts:
        names = ", ".join(c.__name__ for c in HOOKED_ACTIVATIONS)
        raise ZeroCostError(f"naswot: the model has no activation module to hook ({names})")
    hooks = [m.register_forward_hook(hook) for m in acts]
    try:
        with torch.no_grad():
            net(inputs)
    finally:
        for h in hooks:
            h.remove()
    return kernel


def naswot(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """``log|det K|`` of :func:`naswot_kernel` (``targets`` unused); ``-inf`` if ``K`` is
    singular, which two identical samples always make it."""
    del targets
    sign, logabsdet = torch.linalg.slogdet(naswot_kernel(model, inputs))
    return float("-inf") if float(sign) == 0.0 else float(logabsdet)


def grad_norm(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Sum over parameter tensors of ``||dL/dtheta||_2``, ``L`` the batch's cross-entropy."""
    net = _clone(model, train=True)
    params = _params(net)
    grads = _grads(_ce_loss(net, inputs, targets), params)
    return float(sum(torch.linalg.vector_norm(g.double()) for g in grads))


def snip(model: nn.Module, inputs: Tensor, targets: Tensor) -> float:
    """Connection sensitivity ``sum |theta * dL/dtheta|``, ``L`` the batch's cross-entropy."""
    net = _clone(model, train=True)
    params = _params(net)
    grads = _grads(_ce_loss(net, inputs, targets), params)
    return float(
        sum(
            (p.detach().double() * g.double()).abs().sum()
            for p, g in zip(params, grads, strict=True)
        )
    )


ZERO_COST_PROXIES: dict[str, Callable[[nn.Module, Tensor, Tensor], float]] = {
    "synflow": synflow,
    "naswot": naswot,
    "grad_norm": grad_norm,
    "snip": snip,
}
# Baselines that need the spec rather than the model: :func:`score_architecture` computes them.
SPEC_BASELINES = ("params", "macs")
ALL: tuple[str, ...] = (*ZERO_COST_PROXIES, *SPEC_BASELINES)


def check_proxies(proxies: Sequence[str]) -> None:
    """Raise :class:`ZeroCostError` naming the first unknown proxy, with a spelling hint."""
    if isinstance(proxies, str):
        raise ZeroCostError(f"proxies: expected a list of names, found the string {proxies!r}")
    for name in proxies:
        if name not in ALL:
            raise ZeroCostError(
                f"zero-cost proxy {name!r}: unknown{suggest(name, ALL)}; "
                f"expected one of {', '.join(ALL)}"
            )


def score_architecture(
    spec: ArchSpec,
    inputs: Tensor,
    targets: Tensor,
    num_classes: int,
    proxies: Sequence[str] = ALL,
    seed: int = 0,
) -> dict[str, float]:
    """``{proxy: score}`` of ``spec`` on one batch, in the order of ``proxies``.

    Each model-level proxy gets its own model, built after ``torch.manual_seed(seed)`` on
    ``inputs``' device, so proxies never see each other's effects and a call is repeatable; the
    caller's RNG state is restored afterwards. ``params`` and ``macs`` come from
    :func:`nas.models.profile.profile` with this ``num_classes`` at ``inputs``' resolution
    (batch 1), i.e. they describe the very model the proxies score.
    """
    from nas.models.metaformer import build_model
    from nas.models.profile import profile

    check_proxies(proxies)
    scores: dict[str, float] = {}
    devices = [inputs.device.index or 0] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # profile() initialises a model too
        if any(name in SPEC_BASELINES for name in proxies):
            cost = profile(spec, resolution=tuple(inputs.shape[-2:]), num_classes=num_classes)
            baselines = {"params": float(cost.params), "macs": float(cost.macs)}
        for name in proxies:
            if name in SPEC_BASELINES:
                scores[name] = baselines[name]
                continue
            torch.manual_seed(seed)
            model = build_model(spec, num_classes=num_classes).to(inputs.device)
            scores[name] = ZERO_COST_PROXIES[name](model, inputs, targets)
            del model
    return scores


def probe_batch(data_cfg: Any, batch_size: int = 64, seed: int = 0) -> tuple[Tensor, Tensor, int]:
    """``(images, labels, num_classes)``: ``batch_size`` training images of ``data_cfg``'s
    dataset, preprocessed exactly as the proxy trainer's loaders do it but without augmentation
    (the dataset's normalisation, float ``(B, 3, H, W)`` channels_last on the CPU). The images are
    the first batch of a training epoch shuffled with ``seed``, i.e. what a tensor loader with
    ``augment=False`` and ``seed`` yields first."""
    import dataclasses

    from nas.data.loaders import _arrays, _pick_stats
    from nas.data.tensor_loader import TensorLoader

    data_cfg.validate()
    data_cfg = dataclasses.replace(data_cfg, augment=False)
    splits, stats = _arrays(data_cfg)
    train = splits.train
    if not 1 <= batch_size <= len(train):
        raise ZeroCostError(
            f"probe batch_size: expected 1 to {len(train)} (the training images), "
            f"found {batch_size!r}"
        )
    mean, std = _pick_stats(data_cfg, stats)
    loader = TensorLoader(
        train.images,
        train.labels,
        batch_size=batch_size,
        device="cpu",
        mean=mean,
        std=std,
        train=True,
        augment=None,
        seed=seed,
        drop_last=True,
    )
    images, labels = next(iter(loader))
    return images, labels, train.num_classes
