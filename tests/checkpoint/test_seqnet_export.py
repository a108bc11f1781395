"""SeqNet-layout export (tools/export_weights.py --seqnet), checked against an independent model.

:class:`SeqNetLike` is written here from SeqNet's published architecture, not from this project:
torchvision's ResNet trunk ``conv1..layer3`` (serend1p1ty/SeqNet models/resnet.py L8-23), ``layer4``
heads with adaptive max pooling of both res4 and res5 (L31-40; ``reid_head`` a copy, models/
seqnet.py L50), torchvision's ``RPNHead`` layout (conv 3x3 + ReLU, ``cls_logits``, ``bbox_pred``),
the NAE embedding with ``feat_res4`` / ``feat_res5`` projectors, L2 normalisation and the rescaled
norm as the logit (models/seqnet.py ``NormAwareEmbedding``), ``BBoxRegressor`` Linear(C5, 8) + BN(8)
whose person columns are 4:8 (``BBoxRegressor``, ``postprocess_boxes``) and ``FastRCNNPredictor``
(cls_score, bbox_pred). It reads the image file the way SeqNet does: PIL RGB -> ``ToTensor`` (0-1)
-> ImageNet mean / std (GeneralizedRCNNTransform, models/seqnet.py L78-83), and pools RoIs with torchvision's roi_align
(14, sampling 2, aligned=False, scale 1/16: MultiScaleRoIAlign on feat_res4, L51-53).

The anchor correspondence is computed from both libraries' own anchor generators (torchvision's
``AnchorGenerator`` with SeqNet's sizes and ratios, the model's detectron2 generator), and box
deltas are compared after decoding with torchvision's ``BoxCoder`` ((10, 10, 5, 5), torchvision
roi_heads.py L542-544) and the model's own ``Box2BoxTransform``.
"""

import importlib.util
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.structures import Boxes
from PIL import Image
from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.ops import roi_align
from torchvision.transforms import functional as TF

from hpps_d2.checkpoint import IncompatibleWeightsError
from hpps_d2.config import add_hpps_config
from hpps_d2.evaluation.test_mapper import PersonSearchTestMapper

REPO = Path(__file__).resolve().parents[2]
H, W = 64, 96  # divisible by 32: no resize, no padding on either side
#: SeqNet's constants, written out from its code (models/seqnet.py L24-26, L78-83).
SEQNET_SIZES, SEQNET_RATIOS = (32, 64, 128, 256, 512), (0.5, 1.0, 2.0)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: RoIs (x0, y0, x1, y1) in the 64 x 96 image.
ROIS = torch.tensor(
    [
        [4.0, 4.0, 40.0, 60.0],
        [20.0, 10.0, 90.0, 62.0],
        [0.0, 0.0, 96.0, 64.0],
        [30.5, 20.0, 52.0, 47.5],
    ]
)
#: Largest relative errors seen, per (config, output), printed at the end (pytest -s).
ERRORS: dict = {}


class Res5Head(nn.Module):
    """SeqNet's box_head / reid_head: (R, C4, 14, 14) -> {feat_res4 (R, C4), feat_res5 (R, C5)}."""

    def __init__(self, layer4: nn.Module):
        super().__init__()
        self.layer4 = layer4

    def forward(self, x):
        return {
            "feat_res4": F.adaptive_max_pool2d(x, 1).flatten(1),
            "feat_res5": F.adaptive_max_pool2d(self.layer4(x), 1).flatten(1),
        }


class RPNHeadLike(nn.Module):
    """torchvision's RPNHead as SeqNet saved it: (B, C4, h, w) -> (B, A, h, w), (B, 4A, h, w)."""

    def __init__(self, channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, 4 * num_anchors, 1)

    def forward(self, x):
        t = F.relu(self.conv(x))
        return self.cls_logits(t), self.bbox_pred(t)


class NormAwareEmbeddingLike(nn.Module):
    """(feat_res4, feat_res5) -> (R, D) L2-normalised embeddings, (R,) rescaled-norm logits."""

    def __init__(self, in_channels, dim: int = 256):
        super().__init__()
        self.projectors = nn.ModuleDict(
            {
                name: nn.Sequential(nn.Linear(c, dim // 2), nn.BatchNorm1d(dim // 2))
                for name, c in zip(("feat_res4", "feat_res5"), in_channels)
            }
        )
        self.rescaler = nn.BatchNorm1d(1, affine=True)

    def forward(self, feats):
        x = torch.cat([self.projectors[k](feats[k]) for k in ("feat_res4", "feat_res5")], dim=1)
        norms = x.norm(2, 1, keepdim=True)
        return x / norms.clamp(min=1e-12), self.rescaler(norms).squeeze(1)


class BBoxRegressorLike(nn.Module):
    def __init__(self, c5: int):
        super().__init__()
        self.bbox_pred = nn.Sequential(nn.Linear(c5, 8), nn.BatchNorm1d(8))

    def forward(self, x):
        return self.bbox_pred(x)


class FastRCNNPredictorLike(nn.Module):
    def __init__(self, c5: int):
        super().__init__()
        self.cls_score, self.bbox_pred = nn.Linear(c5, 2), nn.Linear(c5, 8)


class SeqNetLike(nn.Module):
    """SeqNet's modules and names (no OIM loss: its tables are dataset-sized)."""

    def __init__(self, arch: str, c4: int, c5: int, num_anchors: int = 15):
        super().__init__()
        r = torchvision.models.get_model(arch, weights=None)
        self.backbone = nn.Sequential(
            OrderedDict(
                conv1=r.conv1, bn1=r.bn1, relu=r.relu, maxpool=r.maxpool,
                layer1=r.layer1, layer2=r.layer2, layer3=r.layer3,
            )
        )  # fmt: skip
        self.rpn = nn.Module()
        self.rpn.head = RPNHeadLike(c4, num_anchors)
        self.roi_heads = nn.Module()
        self.roi_heads.box_head = Res5Head(r.layer4)
        self.roi_heads.reid_head = Res5Head(torchvision.models.get_model(arch, weights=None).layer4)
        self.roi_heads.embedding_head = NormAwareEmbeddingLike((c4, c5))
        self.roi_heads.box_predictor = BBoxRegressorLike(c5)
        self.roi_heads.faster_rcnn_predictor = FastRCNNPredictorLike(c5)

    def roi(self, feat: torch.Tensor, boxes: torch.Tensor, head: str = "reid_head"):
        """SeqNet's second stage on given boxes: (person deltas (R, 4), embeddings, logits)."""
        pooled = roi_align(feat, [boxes], 14, spatial_scale=1 / 16, sampling_ratio=2, aligned=False)
        f = getattr(self.roi_heads, head)(pooled)
        emb, logits = self.roi_heads.embedding_head(f)
        return self.roi_heads.box_predictor(f["feat_res5"])[:, 4:8], emb, logits


def seqnet_input(path: Path) -> torch.Tensor:
    """(1, 3, H, W): the file read SeqNet's way (RGB, 0-1, ImageNet mean / std)."""
    x = TF.to_tensor(Image.open(path).convert("RGB"))
    return TF.normalize(x, IMAGENET_MEAN, IMAGENET_STD)[None]


def load_seqnet_like(arch: str, c4: int, c5: int, sd: dict) -> SeqNetLike:
    """A SeqNetLike holding exactly ``sd`` (strict: every key of SeqNet's layout but the OIM's)."""
    with torch.device("meta"):
        net = SeqNetLike(arch, c4, c5)
    net.load_state_dict(sd, strict=True, assign=True)
    return net.eval()


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def cfg_of(config: str, opts=()):
    cfg = add_hpps_config(get_cfg())
    cfg.merge_from_file(str(config))
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "INPUT.MIN_SIZE_TEST", str(H), "INPUT.MAX_SIZE_TEST", str(W)]
    )
    cfg.merge_from_list(list(opts))
    return cfg


def randomise_norms(module: nn.Module, g: torch.Generator) -> None:
    """Non-trivial affine parameters and statistics in every norm layer of ``module``."""
    with torch.no_grad():
        for m in module.modules():
            if getattr(m, "running_var", None) is not None:
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0.0, 0.1, generator=g)
                m.running_mean.normal_(0.0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)


def random_model(cfg, seed: int = 0):
    """A model in eval mode with non-trivial norms, statistics and biases everywhere."""
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    g = torch.Generator().manual_seed(seed + 1)
    randomise_norms(model, g)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and not name.startswith("backbone"):
                p.add_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for key, err in sorted(ERRORS.items()):
        print(f"max relative error {key}: {err:.2e}")


@pytest.fixture(scope="module")
def image_file(tmp_path_factory) -> Path:
    """A PNG whose channels differ: red ramps left to right, green top to bottom, blue is noise."""
    y, x = np.mgrid[0:H, 0:W]
    noise = np.random.default_rng(0).integers(0, 256, (H, W))
    rgb = np.stack([255 * x / (W - 1), 40 + 150 * y / (H - 1), noise], axis=-1).astype(np.uint8)
    path = tmp_path_factory.mktemp("img") / "rgb.png"
    Image.fromarray(rgb).save(path)
    return path


def export(model, tmp_path: Path, config: Path) -> dict:
    """tools/export_weights.py --seqnet on a training checkpoint of ``model`` (OIM tables and a
    pre-training-only module included, to be left out) -> the state dict it writes."""
    sd = dict(model.state_dict())
    sd["roi_heads.oim.lut"] = torch.randn(7, 256)
    sd["roi_heads.oim.cq"] = torch.randn(5, 256)
    ckpt, out = tmp_path / "model_final.pth", tmp_path / "seqnet.pth"
    torch.save({"model": sd, "iteration": 3}, ckpt)
    args = [str(ckpt), "--seqnet", str(out), "--config-file", str(config)]
    written = _tool("export_weights").main(args)
    assert written == {"seqnet": str(out)}
    return torch.load(out, weights_only=True)


def anchor_match(model) -> list[int]:
    """For each torchvision anchor (SeqNet's generator), the index of the model's detectron2 cell
    anchor with the same box (torchvision rounds to whole pixels)."""
    tv = AnchorGenerator((SEQNET_SIZES,), (SEQNET_RATIOS,)).cell_anchors[0]
    d2 = list(model.proposal_generator.anchor_generator.cell_anchors)[0]
    dist = (tv[:, None, :] - d2[None, :, :]).abs().max(dim=2).values  # (A_tv, A_d2)
    match = dist.argmin(dim=1)
    assert bool((dist.min(dim=1).values <= 0.5).all()) and len(set(match.tolist())) == len(tv)
    return match.tolist()


def project_outputs(model, cfg, path: Path) -> dict:
    """The model's own outputs on the file, through its evaluation mapper and normalisation."""
    record = {"file_name": str(path), "image_id": "x", "height": H, "width": W}
    x = PersonSearchTestMapper(cfg)(record)
    with torch.no_grad():
        images = model.preprocess_image([x])
        feat = model.backbone(images.tensor)["res4"]
        (obj,), (deltas,) = model.proposal_generator.rpn_head([feat])
        out = model.roi_heads.roi_features({"res4": feat}, [Boxes(ROIS)])
        boxes = model.roi_heads.box2box_transform.apply_deltas(out["deltas"], ROIS)
    return {
        "feat": feat, "obj": obj, "deltas": deltas, "roi_deltas": out["deltas"], "boxes": boxes,
        "emb": F.normalize(out["reid_features"], dim=1), "logits": out["logits"],
    }  # fmt: skip


def check_equivalent(
    key: str, model, cfg, net: SeqNetLike, path: Path, rpn_weights=(1.0,) * 4,
    heads=("reid_head", "box_head"),
):
    """Assert that ``model`` (ours) and ``net`` (SeqNet's structure) agree on the image file: res4
    features, RPN objectness and deltas per anchor, and, on :data:`ROIS`, decoded boxes,
    L2-normalised embeddings and logits of each SeqNet head in ``heads`` (relative L2 error
    < 1e-4)."""
    ours = project_outputs(model, cfg, path)
    match = anchor_match(model)
    a = len(match)
    with torch.no_grad():
        feat = net.backbone(seqnet_input(path))
        obj, deltas = net.rpn.head(feat)
        errs = {"backbone res4": _rel(ours["feat"], feat)}
        errs["rpn objectness"] = _rel(ours["obj"][:, match], obj)
        # a delta means delta / weight: torchvision's RPN BoxCoder has weights (1, 1, 1, 1)
        d2 = ours["deltas"].view(1, a, 4, *feat.shape[-2:])[:, match]
        d2 = d2 / torch.tensor(rpn_weights).view(1, 1, 4, 1, 1)
        errs["rpn deltas"] = _rel(d2, deltas.view(1, a, 4, *feat.shape[-2:]))
        coder = BoxCoder((10.0, 10.0, 5.0, 5.0))  # torchvision RoIHeads' default, SeqNet's
        for head in heads:
            roi_deltas, emb, logits = net.roi(feat, ROIS, head)
            decoded = coder.decode_single(roi_deltas, ROIS)
            errs[f"{head} decoded boxes"] = _rel(ours["boxes"], decoded)
            errs[f"{head} embeddings"] = _rel(ours["emb"], emb)
            errs[f"{head} logits"] = _rel(ours["logits"], logits)
        roi_weights = tuple(cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS)
        if rpn_weights == (1.0,) * 4 and roi_weights == (10, 10, 5, 5):
            errs["roi deltas"] = _rel(ours["roi_deltas"], roi_deltas)
    assert ours["emb"].shape == emb.shape == (len(ROIS), 256)
    for name, err in errs.items():
        ERRORS[f"{key}: {name}"] = max(err, ERRORS.get(f"{key}: {name}", 0.0))
    bad = {k: v for k, v in errs.items() if not v < 1e-4}
    assert not bad, f"{key}: relative errors {bad}"


@pytest.mark.parametrize(
    "config, arch, c4, c5",
    [
        ("finetune/nae_prw_r50.yaml", "resnet50", 1024, 2048),
        ("finetune/nae_prw_r18.yaml", "resnet18", 256, 512),
    ],
)
def test_exported_model_computes_what_ours_does_on_an_image_file(
    config, arch, c4, c5, tmp_path, image_file
):
    cfg_path = REPO / "configs" / config
    cfg = cfg_of(cfg_path)
    model = random_model(cfg)
    sd = export(model, tmp_path, cfg_path)
    assert not any(k.startswith("roi_heads.reid_loss.") or ".oim." in k for k in sd)
    net = load_seqnet_like(arch, c4, c5, sd)  # strict: every SeqNet key, no other
    # SeqNet builds reid_head = deepcopy(box_head)
    for k, v in sd.items():
        if k.startswith("roi_heads.reid_head."):
            assert torch.equal(v, sd[k.replace("reid_head", "box_head")])
    check_equivalent(config, model, cfg, net, image_file)


def test_other_box_delta_weights_are_rescaled(tmp_path, image_file):
    """A model trained with other delta weights exports deltas in torchvision's convention."""
    yaml = tmp_path / "weights.yaml"
    yaml.write_text(
        f'_BASE_: "{REPO / "configs/finetune/nae_prw_r18.yaml"}"\nMODEL:\n'
        "  ROI_BOX_HEAD:\n    BBOX_REG_WEIGHTS: (1.0, 2.0, 1.0, 0.5)\n"
        "  RPN:\n    BBOX_REG_WEIGHTS: (2.0, 2.0, 1.0, 1.0)\n"
    )
    cfg = cfg_of(yaml)
    model = random_model(cfg, seed=5)
    net = load_seqnet_like("resnet18", 256, 512, export(model, tmp_path, yaml))
    check_equivalent("r18 other delta weights", model, cfg, net, image_file, (2.0, 2.0, 1.0, 1.0))


def test_seqnet_only_parts_are_initialised_as_seqnet_does(tmp_path):
    from torchvision.models.detection.faster_rcnn import FastRCNNPredictor

    cfg_path = REPO / "configs/finetune/nae_prw_r18.yaml"
    model = random_model(cfg_of(cfg_path))
    sd = export(model, tmp_path, cfg_path)
    ours = model.state_dict()
    # person rows 4:8 are ours, background rows SeqNet's BBoxRegressor init
    box = "roi_heads.box_predictor.bbox_pred."
    assert torch.equal(sd[box + "0.weight"][4:], ours["roi_heads.box_predictor.0.weight"])
    assert torch.equal(sd[box + "1.running_var"][:4], torch.ones(4))
    assert float(sd[box + "0.weight"][:4].std()) == pytest.approx(0.01, rel=0.1)
    # faster_rcnn_predictor: torchvision's FastRCNNPredictor(512, 2) with its default init
    ref = FastRCNNPredictor(512, 2).state_dict()
    prefix = "roi_heads.faster_rcnn_predictor."
    frcnn = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    assert {k: v.shape for k, v in frcnn.items()} == {k: v.shape for k, v in ref.items()}
    bound = 1 / 512**0.5  # kaiming_uniform(a=sqrt(5)) of nn.Linear
    assert all(float(v.abs().max()) <= bound for v in frcnn.values())


def test_shufflenet_is_refused_with_a_clear_error(tmp_path, capsys):
    cfg = cfg_of(REPO / "configs/synth/Base-Synth-ShuffleNet.yaml")
    torch.manual_seed(0)
    ckpt = tmp_path / "shufflenet.pth"
    torch.save({"model": build_model(cfg).state_dict()}, ckpt)
    msg = "ShuffleNetV2.*SeqNet builds only torchvision ResNets"
    with pytest.raises(IncompatibleWeightsError, match=msg):
        _tool("export_weights").main([str(ckpt), "--seqnet", str(tmp_path / "out.pth")])
    assert not (tmp_path / "out.pth").exists()


def test_the_tool_prints_the_load_line_and_what_stays_missing(tmp_path, capsys):
    cfg_path = REPO / "configs/finetune/nae_prw_r18.yaml"
    export(random_model(cfg_of(cfg_path)), tmp_path, cfg_path)
    text = capsys.readouterr().out
    assert "model.load_state_dict(torch.load(path, weights_only=True), strict=False)" in text
    assert "roi_heads.reid_loss.lut, roi_heads.reid_loss.cq" in text
    assert "initialised roi_heads.faster_rcnn_predictor" in text
    assert "not exported (2 tensors): roi_heads.oim.cq, roi_heads.oim.lut" in text
    assert "build_resnet(name='resnet18')" in text
