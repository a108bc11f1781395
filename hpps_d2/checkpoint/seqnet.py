"""
The whole person-search model in SeqNet's key layout, both ways (export and import).

SeqNet (serend1p1ty/SeqNet) is the code that much person-search work builds on (COAT, Kitware/COAT,
is SeqNet-derived; PoseTrack21's person-search baseline is a SeqNet fork). Its model has this
project's parts under other names. Facts the mapping rests on, with where each was read:

* Trunk: ``backbone`` is an ``nn.Sequential`` of torchvision's ``conv1, bn1, relu, maxpool,
  layer1..layer3`` (SeqNet models/resnet.py L8-23, ``Backbone``), so its keys are
  ``backbone.conv1.weight``, ``backbone.bn1.*``, ``backbone.layer{1,2,3}.*``; ``layer4`` is ``roi_heads.box_head.layer4``
  (models/resnet.py L31-34, ``Res5Head``) and ``build_resnet`` takes the torchvision name (L43-44:
  ``resnet50``, ``resnet18``...). Both poolings are ``adaptive_max_pool2d`` (L38-39), as
  ``MODEL.NAE.POOL max``.
* ``reid_head = deepcopy(box_head)`` (models/seqnet.py L50): the second-stage ``layer4``, which
  feeds the embedding and the box regressor in training and test (``SeqRoIHeads.forward``, "Baseline
  head"; the query path of ``SeqNet.inference``). The
  first-stage ``box_head`` feeds only ``faster_rcnn_predictor = FastRCNNPredictor(2048, 2)``
  (L49; ``SeqRoIHeads.forward``, "Faster R-CNN head").
* RPN: torchvision ``RPNHead`` (models/seqnet.py L27-30): ``rpn.head.conv`` (3x3 + ReLU; newer
  torchvision nests it as ``conv.0.0`` and renames unversioned ``conv.weight`` keys itself,
  torchvision/models/detection/rpn.py ``RPNHead._load_from_state_dict``), ``rpn.head.cls_logits``
  (A, C4, 1, 1), ``rpn.head.bbox_pred`` (4A, C4, 1, 1). Anchors: sizes (32..512), ratios
  (0.5, 1, 2) (models/seqnet.py L24-26), as configs/Base-PersonSearch-C4.yaml.
* Anchor order per location: torchvision's ``AnchorGenerator.generate_anchors`` builds
  ``ws = (w_ratios[:, None] * scales[None, :]).view(-1)`` (torchvision/models/detection/
  anchor_utils.py L70-71): ratio-major, size-minor, a_tv = r * S + s. detectron2's
  ``DefaultAnchorGenerator.generate_cell_anchors`` loops ``for size ... for aspect_ratio``
  (detectron2/modeling/anchor_generator.py L200-211): size-major, a_d2 = s * R + r. Both define the
  ratio as h / w and lay the 4 deltas of anchor a at channels 4a..4a+3 (detectron2
  modeling/proposal_generator/rpn.py L461-466; torchvision rpn.py ``concat_box_prediction_layers``).
  So objectness and delta channels are permuted, nothing else. (torchvision rounds its cell
  anchors, anchor_utils.py L74: the same deltas decode up to half a pixel apart; weights cannot
  change that.)
* Box-delta weights: SeqNet passes ``bbox_reg_weights=None`` (models/seqnet.py L72), which
  torchvision's RoIHeads turns into (10, 10, 5, 5) (torchvision roi_heads.py L542-544); its RPN uses
  (1, 1, 1, 1) (torchvision rpn.py L164). This project's are ``MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS``
  (10, 10, 5, 5) and ``MODEL.RPN.BBOX_REG_WEIGHTS`` (1, 1, 1, 1). A delta decodes as delta / weight,
  so other weights are carried over by scaling the last layer's output by w_target / w_source.
* Embedding: ``roi_heads.embedding_head.projectors`` is an ``nn.ModuleDict`` keyed ``feat_res4``,
  ``feat_res5`` of ``Sequential(Linear, BatchNorm1d)`` and ``rescaler = BatchNorm1d(1)``
  (models/seqnet.py ``NormAwareEmbedding.__init__``); the output is L2-normalised and the rescaled
  norm is the person logit (``NormAwareEmbedding.forward``), as this project's (which normalises
  at inference). SeqNet gives an odd dimension's extra unit to the last projector
  (``_split_embedding_dim``), this project to the first.
* Box regressor: ``roi_heads.box_predictor.bbox_pred = Sequential(Linear(2048, 8),
  BatchNorm1d(8))`` (models/seqnet.py ``BBoxRegressor``; ``MODEL.ROI_HEAD.BN_NECK`` True by default,
  defaults.py); only the person's deltas, columns 4:8, are used (``postprocess_boxes``:
  ``boxes[:, 1:]``; ``detection_losses``: ``labels_pos``).
* OIM: ``roi_heads.reid_loss.{lut,cq}`` (models/oim.py), sized by the dataset: never carried over.

SeqNet hard-codes the ResNet-50 widths (``Backbone.out_channels = 1024``, ``FastRCNNPredictor(2048,
2)``, ``BBoxRegressor(2048)``, ``NormAwareEmbedding(in_channels=[1024, 2048])``); ResNet-18/34
exports have 256 / 512 there and need those four numbers changed on the SeqNet side.
"""

import torch
from torch import nn

from .convert import (
    IncompatibleWeightsError,
    StateDict,
    d2_to_torchvision_resnet,
    infer_torchvision_arch,
    torchvision_resnet_to_d2,
    unwrap_state_dict,
    whole_model_for_finetuning,
)

__all__ = [
    "SEQNET_ANCHORS",
    "SEQNET_OIM_PREFIX",
    "TORCHVISION_ROI_REG_WEIGHTS",
    "TORCHVISION_RPN_REG_WEIGHTS",
    "anchor_permutation",
    "d2_to_seqnet",
    "seqnet_to_d2",
]

#: SeqNet's anchors per location: (sizes, aspect ratios) (models/seqnet.py L24-26).
SEQNET_ANCHORS = ((32, 64, 128, 256, 512), (0.5, 1.0, 2.0))
#: torchvision RoIHeads' default BoxCoder weights, which SeqNet uses (roi_heads.py L542-544).
TORCHVISION_ROI_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
#: torchvision RPN's BoxCoder weights (rpn.py L164).
TORCHVISION_RPN_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
#: SeqNet's OIM tables (lookup table, circular queue): never exported nor imported.
SEQNET_OIM_PREFIX = "roi_heads.reid_loss."
_OURS_RPN, _SEQ_RPN = "proposal_generator.rpn_head.", "rpn.head."
_OURS_EMB, _SEQ_EMB = "roi_heads.embedding.", "roi_heads.embedding_head."
_OURS_BOX, _SEQ_BOX = "roi_heads.box_predictor.", "roi_heads.box_predictor.bbox_pred."
_BOX_HEAD, _REID_HEAD = "roi_heads.box_head.", "roi_heads.reid_head."
_FRCNN = "roi_heads.faster_rcnn_predictor."
_SEQ_FEATS = ("feat_res4", "feat_res5")
_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def anchor_permutation(num_sizes: int, num_ratios: int) -> list[int]:
    """``perm[a_tv] = a_d2``: the detectron2 anchor (size-major) that torchvision's anchor
    ``a_tv`` (ratio-major) is, at the same location. ``tv_channels = d2_channels[perm]``."""
    return [s * num_ratios + r for r in range(num_ratios) for s in range(num_sizes)]


def _inverse(perm: list[int]) -> list[int]:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _scale(source: tuple, target: tuple) -> torch.Tensor | None:
    """(4,) factors w_target / w_source that keep decoded boxes; None when all are 1."""
    s = torch.tensor(target, dtype=torch.float64) / torch.tensor(source, dtype=torch.float64)
    return None if bool((s == 1).all()) else s.float()


def _take(sd: StateDict, prefix: str, names, what: str) -> StateDict:
    keys = [prefix + n for n in names]
    missing = [k for k in keys if k not in sd]
    if missing:
        raise IncompatibleWeightsError(what, missing)
    return {n: sd[prefix + n] for n in names}


def _rpn_delta_layer(w: torch.Tensor, b: torch.Tensor, perm, scale):
    """(4A, C, 1, 1) weight, (4A,) bias: anchors reordered by ``perm``, coordinates scaled."""
    a = len(perm)
    w = w.reshape(a, 4, *w.shape[1:])[perm]
    b = b.reshape(a, 4)[perm]
    if scale is not None:
        w = w * scale.view(1, 4, *([1] * (w.dim() - 2)))
        b = b * scale
    return w.reshape(4 * a, *w.shape[2:]).contiguous(), b.reshape(-1).contiguous()


def _check_anchors(num: int, anchors) -> list[int]:
    sizes, ratios = anchors
    if num != len(sizes) * len(ratios):
        raise IncompatibleWeightsError(
            f"the RPN predicts {num} anchors per location, but the anchor generator has "
            f"{len(sizes)} sizes x {len(ratios)} ratios ({sizes}, {ratios})"
        )
    return anchor_permutation(len(sizes), len(ratios))


def _seqnet_init_predictor(in_channels: int, seed: int) -> tuple[StateDict, StateDict]:
    """What SeqNet's constructor builds for the parts this project has no counterpart of, under a
    fixed seed: ``FastRCNNPredictor(in_channels, 2)`` with torchvision's default ``nn.Linear``
    init (models/seqnet.py L49), and the background rows 0:4 of ``BBoxRegressor`` (Linear weight
    and BN weight N(0, 0.01), biases 0, ``BBoxRegressor.__init__``; BN statistics 0 / 1)."""
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        frcnn = FastRCNNPredictor(in_channels, 2).state_dict()
        bg_linear = torch.empty(4, in_channels).normal_(std=0.01)
        bg_bn = torch.empty(4).normal_(std=0.01)
    bg = {"0.weight": bg_linear, "0.bias": torch.zeros(4), "1.weight": bg_bn}
    bg.update({"1.bias": torch.zeros(4), "1.running_mean": torch.zeros(4)})
    bg["1.running_var"] = torch.ones(4)
    return frcnn, bg


def d2_to_seqnet(
    model_state_dict,
    input_format: str = "RGB",
    anchors=SEQNET_ANCHORS,
    roi_reg_weights=TORCHVISION_ROI_REG_WEIGHTS,
    rpn_reg_weights=TORCHVISION_RPN_REG_WEIGHTS,
    seed: int = 0,
) -> tuple[StateDict, dict]:
    """A ResNet PersonSearchRCNN (or pre-training) state dict -> SeqNet's ``SeqNet.state_dict()``.

    Args:
        model_state_dict: a model state dict or checkpoint ``{"model": ...}``.
        input_format: the model's ``INPUT.FORMAT``; SeqNet reads RGB, so BGR models get conv1's
            input channels reversed.
        anchors: (sizes, aspect ratios) of the model's ``MODEL.ANCHOR_GENERATOR`` (SeqNet's own
            by default): the RPN's channels are reordered to torchvision's anchor order.
        roi_reg_weights, rpn_reg_weights: the model's ``MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS`` and
            ``MODEL.RPN.BBOX_REG_WEIGHTS``; deltas are rescaled to torchvision's.
        seed: seed of the SeqNet-style initialisation of ``faster_rcnn_predictor`` and of the
            background rows of ``box_predictor``.

    Returns:
        (state dict, report): SeqNet keys -> tensors (norm counters included; no OIM tables), and
        ``{"arch", "initialised": {key: how}, "not_exported": [our keys], "missing_in_seqnet":
        [SeqNet keys a SeqNet model still lacks after loading]}``.
    """
    sd = unwrap_state_dict(model_state_dict)
    if any(k.startswith("backbone.stage2.") for k in sd):
        raise IncompatibleWeightsError(
            "a ShuffleNetV2 model cannot be exported in SeqNet's layout: SeqNet builds only "
            "torchvision ResNets (models/resnet.py build_resnet); use --whole for this project or "
            "--backbone for torchvision's shufflenet_v2"
        )
    kept = whole_model_for_finetuning(sd)
    not_exported = sorted(set(sd) - set(kept))
    tv = d2_to_torchvision_resnet(kept, input_format)
    arch = infer_torchvision_arch(tv)
    out: StateDict = {}
    for k, v in tv.items():
        if k.startswith("layer4."):
            out[_BOX_HEAD + k] = v
            out[_REID_HEAD + k] = v.clone()  # SeqNet's reid_head = deepcopy(box_head)
        else:
            out["backbone." + k] = v
    used = {k for k in kept if k.startswith(("backbone.", "roi_heads.trunk."))}

    # RPN head: same conv, anchors reordered, deltas rescaled
    layers = ("conv", "objectness_logits", "anchor_deltas")
    rpn_names = [f"{m}.{p}" for m in layers for p in ("weight", "bias")]
    rpn = _take(kept, _OURS_RPN, rpn_names, "Not a person-search model: no RPN head")
    perm = _check_anchors(rpn["objectness_logits.weight"].shape[0], anchors)
    out[_SEQ_RPN + "conv.weight"] = rpn["conv.weight"]
    out[_SEQ_RPN + "conv.bias"] = rpn["conv.bias"]
    out[_SEQ_RPN + "cls_logits.weight"] = rpn["objectness_logits.weight"][perm].contiguous()
    out[_SEQ_RPN + "cls_logits.bias"] = rpn["objectness_logits.bias"][perm].contiguous()
    w, b = _rpn_delta_layer(rpn["anchor_deltas.weight"], rpn["anchor_deltas.bias"], perm,
                            _scale(rpn_reg_weights, TORCHVISION_RPN_REG_WEIGHTS))
    out[_SEQ_RPN + "bbox_pred.weight"], out[_SEQ_RPN + "bbox_pred.bias"] = w, b
    used |= {_OURS_RPN + k for k in rpn}

    # NAE embedding: projectors 0 / 1 -> feat_res4 / feat_res5
    proj_ids = sorted({k[len(_OURS_EMB + "projectors."):].split(".")[0] for k in kept
                       if k.startswith(_OURS_EMB + "projectors.")})
    if proj_ids != ["0", "1"]:
        raise IncompatibleWeightsError(
            "SeqNet's embedding projects (feat_res4, feat_res5); the model has projectors "
            f"{proj_ids}"
        )
    emb_names = [f"projectors.{i}.0.{p}" for i in "01" for p in ("weight", "bias")]
    emb_names += [f"projectors.{i}.1.{p}" for i in "01" for p in _BN]
    emb_names += [f"rescaler.{p}" for p in _BN]
    emb = _take(kept, _OURS_EMB, emb_names, "Not a NAE model: embedding keys missing")
    if emb["projectors.0.0.weight"].shape[0] != emb["projectors.1.0.weight"].shape[0]:
        raise IncompatibleWeightsError(
            "odd embedding dimension: SeqNet gives the extra unit to feat_res5 (models/seqnet.py "
            "_split_embedding_dim), this project to res4; export an even MODEL.NAE.EMBEDDING_DIM"
        )
    for n, v in emb.items():
        if n.startswith("projectors."):
            i, rest = n[len("projectors."):].split(".", 1)
            out[f"{_SEQ_EMB}projectors.{_SEQ_FEATS[int(i)]}.{rest}"] = v
        else:
            out[_SEQ_EMB + n] = v
    used |= {_OURS_EMB + k for k in emb}

    # box regressor: person rows 4:8 of Linear(C5, 8) + BN(8), rescaled in the BN's affine part
    box = _take(kept, _OURS_BOX, [f"0.{p}" for p in ("weight", "bias")] + [f"1.{p}" for p in _BN],
                "Not a NAE model: box predictor keys missing")
    c5 = box["0.weight"].shape[1]
    frcnn, bg = _seqnet_init_predictor(c5, seed)
    scale = _scale(roi_reg_weights, TORCHVISION_ROI_REG_WEIGHTS)
    for n in ("0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var"):
        person = box[n]
        if scale is not None and n in ("1.weight", "1.bias"):
            person = person * scale
        out[_SEQ_BOX + n] = torch.cat([bg[n].to(person.dtype), person])
    out[_SEQ_BOX + "1.num_batches_tracked"] = box["1.num_batches_tracked"]
    used |= {_OURS_BOX + k for k in box}
    for n, v in frcnn.items():
        out[_FRCNN + n] = v

    initialised = {_REID_HEAD + "layer4.*": "copy of roi_heads.box_head.layer4 (SeqNet: "
                   "reid_head = deepcopy(box_head))"}
    initialised[_FRCNN + "*"] = (
        f"torchvision FastRCNNPredictor({c5}, 2) with its default nn.Linear init, seed {seed} "
        "(SeqNet's first stage, trained anew)"
    )
    initialised[_SEQ_BOX + "*[0:4]"] = ("background rows: SeqNet BBoxRegressor init (N(0, 0.01) "
                                        "weights, zero biases, BN statistics 0 / 1)")
    not_exported += sorted(set(kept) - used)
    report = {
        "arch": arch,
        "initialised": initialised,
        "not_exported": not_exported,
        "missing_in_seqnet": [SEQNET_OIM_PREFIX + "lut", SEQNET_OIM_PREFIX + "cq"],
        "rescaled": {"rpn": _scale(rpn_reg_weights, TORCHVISION_RPN_REG_WEIGHTS) is not None,
                     "roi": scale is not None},
    }
    return out, report


def _seqnet_box_predictor(sd: StateDict, what: str) -> StateDict:
    """SeqNet's ``BBoxRegressor`` -> this project's person-only ``BoxRegressor`` (0: Linear, 1: BN).
    Without ``BN_NECK`` (a bare Linear) the BN is an identity: gamma 1, beta 0, mean 0 and variance
    1 - eps, so that (x - 0) / sqrt(var + eps) = x exactly."""
    if _SEQ_BOX + "0.weight" in sd:
        names = [f"0.{p}" for p in ("weight", "bias")] + [f"1.{p}" for p in _BN[:4]]
        box = _take(sd, _SEQ_BOX, names, what)
        rows = 4 if box["0.weight"].shape[0] == 4 else slice(4, 8)
        out = {n: v[rows] if isinstance(rows, slice) else v for n, v in box.items()}
        out["1.num_batches_tracked"] = sd.get(_SEQ_BOX + "1.num_batches_tracked",
                                             torch.zeros((), dtype=torch.int64))
        return out
    lin = _take(sd, _SEQ_BOX[: -len("bbox_pred.")] + "bbox_pred.", ["weight", "bias"], what)
    rows = slice(0, 4) if lin["weight"].shape[0] == 4 else slice(4, 8)
    eps = nn.BatchNorm1d(4).eps
    return {
        "0.weight": lin["weight"][rows], "0.bias": lin["bias"][rows],
        "1.weight": torch.ones(4), "1.bias": torch.zeros(4), "1.running_mean": torch.zeros(4),
        "1.running_var": torch.full((4,), 1.0 - eps),
        "1.num_batches_tracked": torch.zeros((), dtype=torch.int64),
    }


def seqnet_to_d2(
    checkpoint,
    input_format: str = "RGB",
    anchors=SEQNET_ANCHORS,
    roi_reg_weights=TORCHVISION_ROI_REG_WEIGHTS,
    rpn_reg_weights=TORCHVISION_RPN_REG_WEIGHTS,
    layer4_from: str | None = None,
    source: str = "the checkpoint",
) -> tuple[StateDict, dict]:
    """A SeqNet / NAE-style checkpoint in SeqNet's layout -> this project's PersonSearchRCNN
    (the inverse of :func:`d2_to_seqnet`, exact for its output).

    Args:
        checkpoint: SeqNet's ``{"model": state_dict, ...}`` (its train.py saves that) or a bare
            state dict.
        input_format: ``INPUT.FORMAT`` of the config that will load the result (SeqNet reads RGB).
        anchors, roi_reg_weights, rpn_reg_weights: the target config's (see :func:`d2_to_seqnet`).
        layer4_from: ``"reid_head"`` or ``"box_head"``: which SeqNet ``layer4`` becomes the per-RoI
            trunk. Default: ``reid_head`` when present, as SeqNet's embedding and box regressor
            were trained on its output (models/seqnet.py ``SeqRoIHeads.forward``); else
            ``box_head``.
        source: the file's name, for error messages.

    Returns:
        (state dict, report): ``backbone.*``, ``proposal_generator.rpn_head.*`` and
        ``roi_heads.{trunk,embedding,box_predictor}.*`` tensors (no OIM tables), and
        ``{"arch", "layer4_from", "not_imported": [SeqNet keys]}``.

    Raises:
        IncompatibleWeightsError: keys are not SeqNet's (names ``source`` and the missing keys).
    """
    sd = unwrap_state_dict(checkpoint)
    what = f"{source} is not a SeqNet / NAE checkpoint in SeqNet's layout (serend1p1ty/SeqNet)"
    required = [
        "backbone.conv1.weight", _SEQ_RPN + "cls_logits.weight", _SEQ_EMB + "rescaler.weight"
    ]
    missing = [k for k in required if k not in sd]
    heads = [h for h in (_REID_HEAD, _BOX_HEAD) if any(k.startswith(h + "layer4.") for k in sd)]
    if not heads:
        missing.append(_BOX_HEAD + "layer4.*")
    if missing:
        raise IncompatibleWeightsError(
            f"{what}; its top-level modules: {sorted({k.split('.')[0] for k in sd})}", missing
        )
    layer4_from = layer4_from or heads[0][len("roi_heads."):-1]
    head = f"roi_heads.{layer4_from}."
    if head not in heads:
        raise IncompatibleWeightsError(what + f": no {head}layer4", [head + "layer4.*"])
    tv = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
    tv.update({k[len(head):]: v for k, v in sd.items() if k.startswith(head + "layer4.")})
    try:
        arch = infer_torchvision_arch(tv)
        out = torchvision_resnet_to_d2(tv, _depth(arch), input_format, "RGB")
    except IncompatibleWeightsError as e:
        raise IncompatibleWeightsError(f"{what}: its ResNet: {str(e).splitlines()[0]}",
                                       e.missing, e.unexpected) from None
    used = {k for k in sd if k.startswith(("backbone.", head + "layer4."))}

    conv = "conv.0.0." if _SEQ_RPN + "conv.0.0.weight" in sd else "conv."
    rpn = _take(sd, _SEQ_RPN, [f"{m}.{p}" for m in (conv[:-1], "cls_logits", "bbox_pred")
                               for p in ("weight", "bias")], what)
    inv = _inverse(_check_anchors(rpn["cls_logits.weight"].shape[0], anchors))
    out[_OURS_RPN + "conv.weight"] = rpn[conv + "weight"]
    out[_OURS_RPN + "conv.bias"] = rpn[conv + "bias"]
    out[_OURS_RPN + "objectness_logits.weight"] = rpn["cls_logits.weight"][inv].contiguous()
    out[_OURS_RPN + "objectness_logits.bias"] = rpn["cls_logits.bias"][inv].contiguous()
    w, b = _rpn_delta_layer(rpn["bbox_pred.weight"], rpn["bbox_pred.bias"], inv,
                            _scale(TORCHVISION_RPN_REG_WEIGHTS, rpn_reg_weights))
    out[_OURS_RPN + "anchor_deltas.weight"], out[_OURS_RPN + "anchor_deltas.bias"] = w, b
    used |= {_SEQ_RPN + k for k in rpn}

    for i, feat in enumerate(_SEQ_FEATS):
        src = f"{_SEQ_EMB}projectors.{feat}."
        names = [f"0.{p}" for p in ("weight", "bias")] + [f"1.{p}" for p in _BN[:4]]
        part = _take(sd, src, names, what)
        for n, v in part.items():
            out[f"{_OURS_EMB}projectors.{i}.{n}"] = v
        out[f"{_OURS_EMB}projectors.{i}.1.num_batches_tracked"] = sd.get(
            src + "1.num_batches_tracked", torch.zeros((), dtype=torch.int64))
        used |= {k for k in sd if k.startswith(src)}
    for n, v in _take(sd, _SEQ_EMB + "rescaler.", _BN[:4], what).items():
        out[f"{_OURS_EMB}rescaler.{n}"] = v
    out[_OURS_EMB + "rescaler.num_batches_tracked"] = sd.get(
        _SEQ_EMB + "rescaler.num_batches_tracked", torch.zeros((), dtype=torch.int64))
    used |= {k for k in sd if k.startswith(_SEQ_EMB + "rescaler.")}

    box = _seqnet_box_predictor(sd, what)
    scale = _scale(TORCHVISION_ROI_REG_WEIGHTS, roi_reg_weights)
    if scale is not None:  # the BN's affine part is the last layer
        box["1.weight"], box["1.bias"] = box["1.weight"] * scale, box["1.bias"] * scale
    for n, v in box.items():
        out[_OURS_BOX + n] = v.contiguous()
    used |= {k for k in sd if k.startswith("roi_heads.box_predictor.")}
    report = {"arch": arch, "layer4_from": layer4_from, "not_imported": sorted(set(sd) - used)}
    return out, report


def _depth(arch: str) -> int:
    from .convert import RESNET_ARCHS

    if arch not in RESNET_ARCHS:
        raise IncompatibleWeightsError(
            f"SeqNet builds torchvision ResNets; these weights are {arch}"
        )
    return RESNET_ARCHS[arch][0]
