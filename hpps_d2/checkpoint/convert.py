"""
Key mappings between this project's models and torchvision-layout backbones.

Facts the mappings rest on:

* torchvision ResNets name their modules ``conv1, bn1, layer{1..4}.<i>.conv{j}, bn{j},
  downsample.{0,1}, fc``; MMDetection's ResNet (and so the psvis release, docs/anchors.md fact 3)
  uses the same names, inside ``{"state_dict": ...}`` and sometimes under ``backbone.``.
* In this project a ResNet is detectron2's ``ResNet`` up to res4 (``backbone.stem.conv1``,
  ``backbone.res{2,3,4}.<i>.conv{j}`` with the norm inside the conv as ``.norm``, ``.shortcut``)
  and res5 is the per-RoI trunk ``roi_heads.trunk.<i>`` (:class:`Res5Trunk`). torchvision puts the
  stride in the 3x3 conv, so models must use ``MODEL.RESNETS.STRIDE_IN_1X1 = False``.
* ShuffleNetV2 is torchvision's own modules: ``conv1`` is ``backbone.stem.0``, ``stage2/3`` are
  ``backbone.stage2/3``, ``stage4`` and ``conv5`` are ``roi_heads.trunk.stage4/conv5``.
* Channel order: torchvision's ImageNet weights are trained on RGB images
  (pytorch/vision references/classification/presets.py L11-12), and so are MMDet pytorch-style
  ResNets (mmdetection configs/_base_/models/faster-rcnn_r50_fpn.py L4-9: ``bgr_to_rgb=True``,
  ``torchvision://resnet50``) and, by the same default, the psvis ones. The shipped configs read RGB
  (detectron2 tools/convert-torchvision-to-d2.py L18-26), so the weights are copied unchanged. For
  a model that reads BGR, ``input_format="BGR"`` reverses the input channels of the first conv,
  which makes the model compute on BGR images exactly what the source computes on RGB ones (the
  stem is frozen by ``FREEZE_AT``, so training would never undo a wrong order). The way back to
  torchvision undoes it, so exported backbones always take RGB.

Every function checks the whole key set against the architecture and raises
:class:`IncompatibleWeightsError`, listing the missing and unexpected keys, instead of converting
part of a checkpoint silently.
"""

import json
from collections.abc import Iterable, Mapping

import torch

__all__ = [
    "INPUT_FORMATS",
    "RESNET_ARCHS",
    "SHUFFLENET_ARCHS",
    "IncompatibleWeightsError",
    "check_shapes",
    "config_overrides",
    "d2_to_torchvision",
    "d2_to_torchvision_resnet",
    "d2_to_torchvision_shufflenet",
    "external_backbone",
    "infer_torchvision_arch",
    "load_checkpoint",
    "pixel_config",
    "reorder_input_channels",
    "torchvision_arch_of_config",
    "torchvision_resnet_to_d2",
    "torchvision_shufflenet_to_d2",
    "unwrap_state_dict",
    "whole_model_for_finetuning",
]

StateDict = dict[str, torch.Tensor]

#: Blocks per stage (layer1..layer4) of each ResNet depth; depth >= 50 uses bottleneck blocks.
RESNET_BLOCKS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 6, 3),
    101: (3, 4, 23, 3),
    152: (3, 8, 36, 3),
}
#: torchvision ResNet-family names -> (depth, groups, width per group) (cfg.MODEL.RESNETS).
RESNET_ARCHS = {
    "resnet18": (18, 1, 64),
    "resnet34": (34, 1, 64),
    "resnet50": (50, 1, 64),
    "resnet101": (101, 1, 64),
    "resnet152": (152, 1, 64),
    "resnext50_32x4d": (50, 32, 4),
    "resnext101_32x8d": (101, 32, 8),
    "resnext101_64x4d": (101, 64, 4),
    "wide_resnet50_2": (50, 1, 128),
    "wide_resnet101_2": (101, 1, 128),
}
#: torchvision ShuffleNetV2 names -> width multiplier (cfg.MODEL.SHUFFLENET.WIDTH).
SHUFFLENET_ARCHS = {
    "shufflenet_v2_x0_5": 0.5,
    "shufflenet_v2_x1_0": 1.0,
    "shufflenet_v2_x1_5": 1.5,
    "shufflenet_v2_x2_0": 2.0,
}
#: Output channels of ShuffleNetV2's stage2 per width (torchvision's stages_out_channels[1]).
_SHUFFLENET_STAGE2_CHANNELS = {48: 0.5, 116: 1.0, 176: 1.5, 244: 2.0}
_SHUFFLENET_REPEATS = (("stage2", 4), ("stage3", 8), ("stage4", 4))
#: torchvision ShuffleNetV2 module prefix -> this project's.
_SHUFFLENET_PREFIXES = {
    "conv1.": "backbone.stem.0.",
    "stage2.": "backbone.stage2.",
    "stage3.": "backbone.stage3.",
    "stage4.": "roi_heads.trunk.stage4.",
    "conv5.": "roi_heads.trunk.conv5.",
}
_RESNET_D2_PREFIXES = ("backbone.stem.conv1.", "backbone.res", "roi_heads.trunk.")
_NORM_PARAMS = ("weight", "bias", "running_mean", "running_var")
_COUNTER = "num_batches_tracked"
#: Channel orders a converted model may read (``cfg.INPUT.FORMAT``); torchvision's is "RGB".
INPUT_FORMATS = ("RGB", "BGR")
#: The first conv (the only layer that sees the image channels) in this project's layout.
_RESNET_CONV1, _SHUFFLENET_CONV1 = "backbone.stem.conv1.weight", "backbone.stem.0.0.weight"
#: Top-level modules of the person-search model kept for fine-tuning.
FINETUNE_MODULES = ("backbone", "proposal_generator", "roi_heads")
#: Top-level module-name prefixes of pre-training-only modules (SimSiam predictor, IAMs).
PRETRAIN_ONLY_PREFIXES = ("ssl_", "iam_")
#: OIM tables: rows = the pre-training identity count; fine-tuning counts its own.
OIM_PREFIX = "roi_heads.oim."


class IncompatibleWeightsError(ValueError):
    """The keys of a state dict do not match the architecture a conversion expects.

    Attributes:
        missing (list[str]): keys the architecture needs that the input lacks.
        unexpected (list[str]): keys of the input the architecture does not have.
    """

    def __init__(self, what: str, missing: Iterable[str] = (), unexpected: Iterable[str] = ()):
        self.missing = sorted(missing)
        self.unexpected = sorted(unexpected)
        lines = [what]
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                shown = ", ".join(keys[:12]) + (
                    f", ... ({len(keys) - 12} more)" if len(keys) > 12 else ""
                )
                lines.append(f"  {len(keys)} {name} keys: {shown}")
        super().__init__("\n".join(lines))


def unwrap_state_dict(checkpoint: Mapping) -> StateDict:
    """The tensor state dict inside a checkpoint.

    Args:
        checkpoint: a plain state dict, an MMDet/mmcv/psvis checkpoint ``{"state_dict": ...}`` or a
            detectron2 checkpoint ``{"model": ...}``.

    Returns:
        dict[str, Tensor]: the tensors, without a DistributedDataParallel ``module.`` prefix.
    """
    for key in ("state_dict", "model"):
        if isinstance(checkpoint.get(key), Mapping):
            checkpoint = checkpoint[key]
            break
    sd = {k: v for k, v in checkpoint.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise IncompatibleWeightsError(
            f"No tensors found; top-level keys: {sorted(checkpoint)[:12]}"
        )
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def load_checkpoint(path: str, allow_pickle: bool = False) -> dict:
    """The dict in weights file ``path``, on CPU (:func:`hpps_d2.checkpoint.io.load_weights_file`):
    torch files with ``weights_only=True`` unless ``allow_pickle``, ``.pkl`` files restricted.

    Raises:
        UnsafeWeightsError (a pickle.UnpicklingError): the file holds Python objects beyond
            tensors and plain types (some MMDet checkpoints keep their config in ``meta``); pass
            ``allow_pickle`` for trusted torch files.
        WeightsFileError, FileNotFoundError: broken or missing files, naming the file.
    """
    from .io import load_weights_file

    return load_weights_file(path, allow_pickle)


def external_backbone(checkpoint: Mapping) -> StateDict:
    """The backbone weights of an external (torchvision, MMDet, psvis) checkpoint.

    Args:
        checkpoint: a backbone state dict, an MMDet/psvis checkpoint ``{"state_dict": ...}``, or a
            whole MMDet detector, whose ``backbone.`` keys are kept without the prefix (MMDet C4
            detectors keep res5 as ``roi_head.shared_head.layer4``, which is kept as ``layer4``).

    Returns:
        dict[str, Tensor]: torchvision-style names (``conv1.weight``, ``layer1.0.conv1.weight``...).
    """
    sd = unwrap_state_dict(checkpoint)
    if not any(k.startswith("backbone.") for k in sd):
        return sd
    out = {k[len("backbone.") :]: v for k, v in sd.items() if k.startswith("backbone.")}
    shared = "roi_head.shared_head."
    out.update({k[len(shared) :]: v for k, v in sd.items() if k.startswith(shared + "layer4.")})
    return out


def _check_format(name: str, value: str) -> str:
    if value not in INPUT_FORMATS:
        raise ValueError(f"{name} must be one of {INPUT_FORMATS}, got {value!r}")
    return value


def reorder_input_channels(
    state_dict: Mapping, key: str, source_format: str, target_format: str
) -> StateDict:
    """``state_dict`` with the (C_out, 3, k, k) conv weight ``key`` made to read ``target_format``
    images the way it read ``source_format`` ones: its input channels reversed when the two
    differ (RGB <-> BGR), else unchanged. Other tensors are shared, not copied."""
    _check_format("source format", source_format)
    _check_format("target format", target_format)
    out = dict(state_dict)
    if source_format != target_format:
        w = out[key]
        if w.dim() != 4 or w.shape[1] != 3:
            raise IncompatibleWeightsError(
                f"{key} has shape {tuple(w.shape)}: not a conv over 3 image channels"
            )
        out[key] = w.flip(1).contiguous()
    return out


def pixel_config(input_format: str = "RGB") -> list[str]:
    """``cfg.merge_from_list`` overrides for torchvision-trained weights read in ``input_format``:
    ``INPUT.FORMAT`` and torchvision's ImageNet mean/std (0-255) in that channel order."""
    from ..data.image_io import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

    step = 1 if _check_format("input_format", input_format) == "RGB" else -1
    mean, std = list(IMAGENET_MEAN_RGB[::step]), list(IMAGENET_STD_RGB[::step])
    pairs = [("INPUT.FORMAT", input_format), ("MODEL.PIXEL_MEAN", mean), ("MODEL.PIXEL_STD", std)]
    return [json.dumps(x) if isinstance(x, list) else x for pair in pairs for x in pair]


def _resnet_modules(depth: int) -> list[tuple[str, str, str]]:
    """(torchvision module, this project's module, "conv" or "norm") for every ResNet layer."""
    if depth not in RESNET_BLOCKS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_BLOCKS)}, got {depth!r}")
    bottleneck = depth >= 50
    mods = [("conv1", "backbone.stem.conv1", "conv"), ("bn1", "backbone.stem.conv1.norm", "norm")]
    for stage, num_blocks in enumerate(RESNET_BLOCKS[depth], start=1):
        for i in range(num_blocks):
            tv = f"layer{stage}.{i}"
            d2 = f"backbone.res{stage + 1}.{i}" if stage < 4 else f"roi_heads.trunk.{i}"
            # torchvision and detectron2 both project the shortcut where channels/stride change:
            # the first block of every stage, except layer1 of basic-block ResNets (64 -> 64).
            if i == 0 and (bottleneck or stage > 1):
                mods.append((f"{tv}.downsample.0", f"{d2}.shortcut", "conv"))
                mods.append((f"{tv}.downsample.1", f"{d2}.shortcut.norm", "norm"))
            for j in range(1, 4 if bottleneck else 3):
                mods.append((f"{tv}.conv{j}", f"{d2}.conv{j}", "conv"))
                mods.append((f"{tv}.bn{j}", f"{d2}.conv{j}.norm", "norm"))
    return mods


def _shufflenet_modules() -> list[tuple[str, str, str]]:
    """(torchvision module, this project's module, kind) of every ShuffleNetV2 layer, any width."""
    tv = [("conv1.0", "conv"), ("conv1.1", "norm")]
    for stage, repeats in _SHUFFLENET_REPEATS:
        for i in range(repeats):
            if i == 0:  # the downsampling unit has a second branch: dw conv, bn, 1x1 conv, bn
                tv += [(f"{stage}.0.branch1.{j}", k) for j, k in enumerate(("conv", "norm") * 2)]
            # branch2: 1x1 conv, bn, relu, dw conv, bn, 1x1 conv, bn, relu
            tv += [
                (f"{stage}.{i}.branch2.{j}", k)
                for j, k in zip((0, 1, 3, 4, 5, 6), ("conv", "norm") * 3)
            ]
    tv += [("conv5.0", "conv"), ("conv5.1", "norm")]
    out = []
    for name, kind in tv:
        src = next(p for p in _SHUFFLENET_PREFIXES if name.startswith(p))
        out.append((name, _SHUFFLENET_PREFIXES[src] + name[len(src) :], kind))
    return out


def _rename(
    sd: StateDict,
    modules: list[tuple[str, str, str]],
    to_d2: bool,
    what: str,
    ignore: tuple[str, ...] = (),
) -> StateDict:
    """Rename every parameter of ``modules`` (strictly), one direction or the other.

    Norm counters (``num_batches_tracked``) are dropped towards this project (FrozenBN has none)
    and always written towards torchvision (0 where the source has none), so that the result loads
    strictly into a torchvision model.
    """
    names: dict[str, str] = {}
    counters: dict[str, str] = {}
    for tv_mod, d2_mod, kind in modules:
        src_mod, dst_mod = (tv_mod, d2_mod) if to_d2 else (d2_mod, tv_mod)
        for p in ("weight",) if kind == "conv" else _NORM_PARAMS:
            names[f"{src_mod}.{p}"] = f"{dst_mod}.{p}"
        if kind == "norm":
            counters[f"{src_mod}.{_COUNTER}"] = f"{dst_mod}.{_COUNTER}"
    keys = {k for k in sd if not k.startswith(ignore)}
    missing, unexpected = set(names) - keys, keys - set(names) - set(counters)
    if missing or unexpected:
        raise IncompatibleWeightsError(what, missing, unexpected)
    out = {dst: sd[src] for src, dst in names.items()}
    if not to_d2:
        for src, dst in counters.items():
            out[dst] = sd[src] if src in sd else torch.zeros((), dtype=torch.int64)
    return out


def torchvision_resnet_to_d2(
    state_dict: Mapping, depth: int, input_format: str = "RGB", weights_format: str = "RGB"
) -> StateDict:
    """torchvision/MMDet/psvis ResNet weights -> this project's backbone (res2-4) and res5 trunk.

    Args:
        state_dict: a torchvision ResNet state dict (``fc`` is dropped), or an MMDet/psvis
            checkpoint ``{"state_dict": ...}`` whose keys may carry a ``backbone.`` prefix.
        depth: 18, 34, 50, 101 or 152 (ResNeXt / wide ResNets have the depth's key names).
        input_format: ``INPUT.FORMAT`` of the model that will load the result.
        weights_format: the channel order the weights were trained on: "RGB" for torchvision,
            MMDet pytorch-style and psvis ResNets, "BGR" for MMDet caffe-style ones. conv1's input
            channels are reversed when the two differ.

    Returns:
        dict[str, Tensor]: ``backbone.stem.conv1.*``, ``backbone.res{2,3,4}.*`` and
        ``roi_heads.trunk.*`` keys, without norm counters.
    """
    sd = external_backbone(state_dict)
    what = f"Not a torchvision/MMDet ResNet-{depth} state dict (key names differ)"
    if any(k.startswith(("stem.", "res2.", "res4.")) for k in sd):
        what += "; it looks like a detectron2 backbone already"
    modules = _resnet_modules(depth)
    _check_format("input_format", input_format)
    try:
        out = _rename(sd, modules, True, what, ignore=("fc.",))
    except IncompatibleWeightsError as e:
        try:
            guess = infer_torchvision_arch(sd)
        except IncompatibleWeightsError:
            raise e from None
        if guess in SHUFFLENET_ARCHS or RESNET_ARCHS[guess][0] != depth:
            what += f"; they look like {guess}"
        raise IncompatibleWeightsError(what, e.missing, e.unexpected) from None
    return reorder_input_channels(out, _RESNET_CONV1, weights_format, input_format)


def d2_to_torchvision_resnet(model_state_dict: Mapping, input_format: str = "RGB") -> StateDict:
    """This project's ResNet backbone + res5 trunk -> torchvision ResNet names (the inverse of
    :func:`torchvision_resnet_to_d2`). The depth is read from the keys.

    Args:
        model_state_dict: the state dict of a whole model (or ``{"model": ...}``); keys outside
            ``backbone.`` and ``roi_heads.trunk.`` are ignored.
        input_format: ``INPUT.FORMAT`` the model was trained with; BGR models get conv1's input
            channels reversed, so that the result always takes RGB, as torchvision's models do.

    Returns:
        dict[str, Tensor]: loadable into ``torchvision.models.resnet<depth>()`` with only ``fc``
        missing (norm counters included).
    """
    sd = unwrap_state_dict(model_state_dict)
    _check_format("input_format", input_format)
    sd = {k: v for k, v in sd.items() if k.startswith(("backbone.", "roi_heads.trunk."))}
    counts = []
    for prefix in ("backbone.res2.", "backbone.res3.", "backbone.res4.", "roi_heads.trunk."):
        ids = {k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)}
        counts.append(len([i for i in ids if i.isdigit()]))
    bottleneck = any(".conv3." in k for k in sd)
    depth = next(
        (d for d, b in RESNET_BLOCKS.items() if b == tuple(counts) and (d >= 50) == bottleneck),
        None,
    )
    if depth is None:
        kind = "bottleneck" if bottleneck else "basic"
        raise IncompatibleWeightsError(
            f"Not a ResNet person-search model: blocks per stage res2..res5 {counts} of {kind} "
            f"blocks match no depth in {sorted(RESNET_BLOCKS)}",
            unexpected=[k for k in sd if not k.startswith(_RESNET_D2_PREFIXES)],
        )
    tv = _rename(sd, _resnet_modules(depth), False, f"Not a ResNet-{depth} person-search model")
    return reorder_input_channels(tv, "conv1.weight", input_format, "RGB")


def torchvision_shufflenet_to_d2(
    state_dict: Mapping, input_format: str = "RGB", weights_format: str = "RGB"
) -> StateDict:
    """torchvision ShuffleNetV2 weights (any width) -> this project's backbone and trunk.

    Args:
        state_dict: a torchvision ShuffleNetV2 state dict (``fc`` is dropped), or a checkpoint
            ``{"state_dict": ...}`` whose keys may carry a ``backbone.`` prefix.
        input_format, weights_format: as for :func:`torchvision_resnet_to_d2`; the first conv is
            ``conv1.0``.

    Returns:
        dict[str, Tensor]: ``backbone.stem.0.*``, ``backbone.stage{2,3}.*``,
        ``roi_heads.trunk.{stage4,conv5}.*`` keys, without norm counters.
    """
    sd = external_backbone(state_dict)
    what = "Not a torchvision ShuffleNetV2 state dict (key names differ)"
    if any("g_conv_1x1" in k for k in sd):  # MMClassification ShuffleNetV1 unit names
        what += "; ShuffleNetV1 weights (psvis) do not fit this project's ShuffleNetV2"
    _check_format("input_format", input_format)
    out = _rename(sd, _shufflenet_modules(), True, what, ignore=("fc.",))
    return reorder_input_channels(out, _SHUFFLENET_CONV1, weights_format, input_format)


def d2_to_torchvision_shufflenet(
    model_state_dict: Mapping, input_format: str = "RGB"
) -> StateDict:
    """This project's ShuffleNetV2 backbone + trunk -> torchvision names (the inverse of
    :func:`torchvision_shufflenet_to_d2`).

    Args:
        model_state_dict: the state dict of a whole model (or ``{"model": ...}``); keys outside
            ``backbone.`` and ``roi_heads.trunk.`` are ignored.
        input_format: as for :func:`d2_to_torchvision_resnet` (the result always takes RGB).

    Returns:
        dict[str, Tensor]: loadable into ``torchvision.models.shufflenet_v2_x<width>()`` with only
        ``fc`` missing.
    """
    sd = unwrap_state_dict(model_state_dict)
    sd = {k: v for k, v in sd.items() if k.startswith(("backbone.", "roi_heads.trunk."))}
    _check_format("input_format", input_format)
    tv = _rename(sd, _shufflenet_modules(), False, "Not a ShuffleNetV2 person-search model")
    return reorder_input_channels(tv, "conv1.0.weight", input_format, "RGB")


def d2_to_torchvision(
    model_state_dict: Mapping, input_format: str = "RGB"
) -> tuple[str, StateDict]:
    """Export the backbone of a ResNet or ShuffleNetV2 model, chosen from its keys, for RGB input
    (``input_format``: the model's ``INPUT.FORMAT``; see :func:`d2_to_torchvision_resnet`).

    Returns:
        (str, dict[str, Tensor]): the torchvision architecture name (see
        :func:`infer_torchvision_arch`) and the torchvision-named state dict.
    """
    sd = unwrap_state_dict(model_state_dict)
    if any(k.startswith("backbone.stage2.") for k in sd):
        tv = d2_to_torchvision_shufflenet(sd, input_format)
    elif any(k.startswith("backbone.res2.") for k in sd):
        tv = d2_to_torchvision_resnet(sd, input_format)
    else:
        backbone = sorted({".".join(k.split(".")[:2]) for k in sd if k.startswith("backbone.")})
        raise IncompatibleWeightsError(
            "Neither a ResNet (backbone.res2) nor a ShuffleNetV2 (backbone.stage2) model",
            unexpected=backbone,
        )
    return infer_torchvision_arch(tv), tv


def infer_torchvision_arch(state_dict: Mapping) -> str:
    """The torchvision architecture name of torchvision-named weights: a key of
    :data:`RESNET_ARCHS` (from block counts, block type and the 3x3 conv's groups and width) or of
    :data:`SHUFFLENET_ARCHS` (from stage2's channels)."""
    sd = external_backbone(state_dict)
    if "stage2.0.branch1.2.weight" in sd:
        channels = 2 * sd["stage2.0.branch1.2.weight"].shape[0]
        if channels in _SHUFFLENET_STAGE2_CHANNELS:
            width = _SHUFFLENET_STAGE2_CHANNELS[channels]
            return next(n for n, w in SHUFFLENET_ARCHS.items() if w == width)
        raise IncompatibleWeightsError(
            f"ShuffleNetV2 with {channels} stage2 channels: unknown width"
        )
    if "layer1.0.conv1.weight" in sd:
        counts = tuple(
            len({k.split(".")[1] for k in sd if k.startswith(f"layer{s}.")}) for s in range(1, 5)
        )
        bottleneck = "layer1.0.conv3.weight" in sd
        depth = next(
            (d for d, b in RESNET_BLOCKS.items() if b == counts and (d >= 50) == bottleneck), None
        )
        conv2 = sd["layer1.0.conv2.weight"]
        groups = conv2.shape[0] // conv2.shape[1]
        key = (depth, groups, conv2.shape[0] // groups if bottleneck else 64)
        for name, spec in RESNET_ARCHS.items():
            if spec == key:
                return name
        raise IncompatibleWeightsError(
            f"ResNet-like weights with blocks {counts}, groups {groups} and layer1 width "
            f"{conv2.shape[0]} match no architecture in {sorted(RESNET_ARCHS)}"
        )
    raise IncompatibleWeightsError(
        "Neither torchvision ResNet (layer1.0.conv1) nor ShuffleNetV2 (stage2.0) weights",
        unexpected=sorted(sd)[:12],
    )


def check_shapes(
    state_dict: Mapping, reference: Mapping, ignore: tuple[str, ...] = ("fc.",)
) -> None:
    """Raise :class:`IncompatibleWeightsError` unless ``state_dict`` has ``reference``'s keys (those
    not starting with ``ignore``; norm counters optional) with the same shapes."""
    ref = {k: v for k, v in reference.items() if not k.startswith(ignore)}
    sd = {k: v for k, v in state_dict.items() if not k.startswith(ignore)}
    required = {k for k in ref if not k.endswith(_COUNTER)}
    missing, unexpected = required - set(sd), set(sd) - set(ref)
    if missing or unexpected:
        raise IncompatibleWeightsError(
            "Keys differ from the reference architecture", missing, unexpected
        )
    bad = [
        f"{k} {tuple(v.shape)} vs {tuple(ref[k].shape)}"
        for k, v in sd.items()
        if v.shape != ref[k].shape
    ]
    if bad:
        raise IncompatibleWeightsError(
            f"{len(bad)} shapes differ from the reference architecture: " + "; ".join(bad[:6])
        )


def config_overrides(arch: str, input_format: str = "RGB") -> list[str]:
    """``cfg.merge_from_list`` overrides that build this project's model for ``arch`` (a key of
    :data:`RESNET_ARCHS` or :data:`SHUFFLENET_ARCHS`) so that weights converted for
    ``input_format`` fit it, channel order and ImageNet normalisation included
    (:func:`pixel_config`)."""
    if arch in RESNET_ARCHS:
        depth, groups, width = RESNET_ARCHS[arch]
        feature = "res4"
        pairs = [
            ("MODEL.BACKBONE.NAME", "build_resnet_backbone"),
            ("MODEL.RESNETS.DEPTH", depth),
            ("MODEL.RESNETS.RES2_OUT_CHANNELS", 256 if depth >= 50 else 64),
            ("MODEL.RESNETS.NUM_GROUPS", groups),
            ("MODEL.RESNETS.WIDTH_PER_GROUP", width),
            ("MODEL.RESNETS.STRIDE_IN_1X1", False),
            ("MODEL.RESNETS.OUT_FEATURES", [feature]),
            ("MODEL.ROI_BOX_HEAD.TRUNK", "Res5Trunk"),
        ]
    elif arch in SHUFFLENET_ARCHS:
        feature = "stage3"
        pairs = [
            ("MODEL.BACKBONE.NAME", "build_shufflenet_v2_backbone"),
            ("MODEL.SHUFFLENET.WIDTH", SHUFFLENET_ARCHS[arch]),
            ("MODEL.SHUFFLENET.OUT_FEATURES", [feature]),
            ("MODEL.ROI_BOX_HEAD.TRUNK", "ShuffleNetV2Trunk"),
        ]
    else:
        known = sorted(RESNET_ARCHS) + sorted(SHUFFLENET_ARCHS)
        raise ValueError(f"Unknown arch {arch!r}; known: {known}")
    pairs += [("MODEL.RPN.IN_FEATURES", [feature]), ("MODEL.ROI_HEADS.IN_FEATURES", [feature])]
    # lists as JSON ('["res4"]'): what yacs parses, and quotes cleanly for a shell
    out = [json.dumps(x) if isinstance(x, list) else str(x) for pair in pairs for x in pair]
    return out + pixel_config(input_format)


def torchvision_arch_of_config(cfg) -> str:
    """The torchvision architecture name of the model ``cfg`` builds (the inverse of
    :func:`config_overrides`).

    Raises:
        ValueError: the backbone has no torchvision counterpart, or is a ResNet with
            ``STRIDE_IN_1X1 = True`` (torchvision strides in the 3x3 conv, so its weights would not
            compute the same function there).
    """
    name = cfg.MODEL.BACKBONE.NAME
    if name == "build_resnet_backbone":
        r = cfg.MODEL.RESNETS
        spec = (r.DEPTH, r.NUM_GROUPS, r.WIDTH_PER_GROUP if r.DEPTH >= 50 else 64)
        arch = next((n for n, s in RESNET_ARCHS.items() if s == spec), None)
        if arch is None:
            raise ValueError(f"No torchvision ResNet has (depth, groups, width) {spec}")
        if r.DEPTH >= 50 and r.STRIDE_IN_1X1:
            raise ValueError(
                "MODEL.RESNETS.STRIDE_IN_1X1 is True: torchvision ResNets stride in the 3x3 conv"
            )
        return arch
    if name == "build_shufflenet_v2_backbone":
        width = float(cfg.MODEL.SHUFFLENET.WIDTH)
        arch = next((n for n, w in SHUFFLENET_ARCHS.items() if w == width), None)
        if arch is None:
            raise ValueError(f"No torchvision ShuffleNetV2 has width {width}")
        return arch
    raise ValueError(f"MODEL.BACKBONE.NAME {name!r} has no torchvision counterpart")


def whole_model_for_finetuning(state_dict: Mapping) -> StateDict:
    """The pre-trained whole model, ready to initialise fine-tuning in this project.

    Keeps the backbone, the RPN and the RoI head (trunk, NAE embedding, box predictor); drops the
    pre-training-only modules (``ssl_predictor``, ``iam_*``) and the OIM tables
    (``roi_heads.oim.{lut,cq,cq_head}``), whose sizes are the pre-training identity count.

    Args:
        state_dict: a model state dict or a training checkpoint ``{"model": ...}``.

    Returns:
        dict[str, Tensor]: the kept keys, unchanged.
    """
    sd = unwrap_state_dict(state_dict)
    tops = {k.split(".")[0] for k in sd}
    unexpected = [
        k
        for k in sd
        if k.split(".")[0] not in FINETUNE_MODULES and not k.startswith(PRETRAIN_ONLY_PREFIXES)
    ]
    missing = [m + ".*" for m in FINETUNE_MODULES if m not in tops]
    if missing or unexpected:
        raise IncompatibleWeightsError(
            f"Not a person-search model state dict (top-level modules {sorted(tops)}); known: "
            f"{FINETUNE_MODULES} and pre-training-only {PRETRAIN_ONLY_PREFIXES}*",
            missing,
            unexpected,
        )
    return {
        k: v
        for k, v in sd.items()
        if k.split(".")[0] in FINETUNE_MODULES and not k.startswith(OIM_PREFIX)
    }
