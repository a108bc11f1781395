"""
The SSL consistency term L_con (Eq. 5-6) and the re-ID IAM's instance input, checked against
computations written out here: a hand-built batch of per-RoI features, the SimSiam loss re-derived
with ``F.cosine_similarity``, and the geometry of the gradient (no radial component).
"""
import os
import socket
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

import hpps_d2  # noqa: F401  (compat patches before detectron2, also in spawned workers)
from detectron2.modeling import build_model
from detectron2.utils.events import EventStorage

from hpps_d2.data.hybrid_mapper import HybridDatasetMapper
from tests.modeling.conftest import tiny_cfg

D = 256


def _model(norm="", seed=0):
    cfg = tiny_cfg()
    cfg.HPPS.SSL.PRED_NORM = norm
    torch.manual_seed(seed)
    model = build_model(cfg)
    model.train()
    return model


def _extras(rows):
    """Per-RoI extras as the RoI head returns them, from rows (view, is_fg, pid, feature)."""
    return {
        "image_index": torch.tensor([r[0] for r in rows]),
        "is_fg": torch.tensor([r[1] for r in rows]),
        "pids": torch.tensor([r[2] for r in rows]),
        "reid_features": torch.stack([r[3] for r in rows]).requires_grad_(True),
    }


def _simsiam(pred, h1, h2):
    """Eq. 6 written out: 1/2 C(sg(h2), z1) + 1/2 C(sg(h1), z2), C = -mean cosine."""
    z1, z2 = pred(h1), pred(h2)
    return -0.5 * (F.cosine_similarity(z1, h2.detach()).mean() + F.cosine_similarity(z2, h1.detach()).mean())


def test_negative_pid_never_joins_another_images_person():
    """Finding 9: key = image * big + pid made (image 1, pid -1) collide with (image 0, pid big-1)."""
    model = _model()
    g = torch.Generator().manual_seed(0)
    f = [torch.randn(D, generator=g) for _ in range(8)]
    # views 0/1 = image 0, views 2/3 = image 1. pid 5 is the largest pid, so big = 6 and the old key
    # of (image 1, pid -1) was 1 * 6 - 1 = 5 = the key of (image 0, pid 5).
    rows = [
        (0, True, 5, f[0]), (1, True, 5, f[1]),
        (2, True, 3, f[2]), (3, True, 3, f[3]),
        (2, True, -1, f[4]), (3, True, -1, f[5]),
        (0, False, -2, f[6]), (3, False, -2, f[7]),  # background RoIs never count
    ]
    extras = _extras(rows)
    loss, _ = model._consistency(extras, [[0, 1], [2, 3]], [0, 1])
    h1 = torch.stack([f[0], f[2]])  # view 0 of (image 0, pid 5), (image 1, pid 3)
    h2 = torch.stack([f[1], f[3]])
    expected = _simsiam(model.ssl_predictor, h1, h2)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)


def test_reid_alignment_gradient_has_no_radial_component(hybrid_records):
    """Finding 6: the re-ID IAM sees the direction of the NAE embedding (what OIM matches on), so
    its gradient is orthogonal to the embedding and leaves the norm (the detection score) alone."""
    model = _model(norm="BN")
    stash = {}
    forward = model.roi_heads.forward

    def keep_extras(*args, **kwargs):
        out = forward(*args, **kwargs)
        stash.update(out[2])
        return out

    model.roi_heads.forward = keep_extras
    np.random.seed(0)
    mapper = HybridDatasetMapper(tiny_cfg())
    with EventStorage():
        losses = model([mapper(r) for r in hybrid_records])
    adv = losses["adv_reid_img"] + losses["adv_reid_ins"] + losses["adv_reid_cst"]
    (g,) = torch.autograd.grad(adv, stash["reid_features"])
    e = stash["reid_features"].detach()
    rows = g.norm(dim=1) > 0
    assert rows.sum() >= 2, "the batch must have re-ID foreground RoIs"
    radial = (g[rows] * e[rows]).sum(1).abs() / (g[rows].norm(dim=1) * e[rows].norm(dim=1))
    assert radial.max() < 1e-4, f"the re-ID IAM pushes the embedding norm: |cos(grad, e)| up to {radial.max():.3f}"


# -- L_con over the global batch (finding 7) ----------------------------------------------------- #
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _features(seed, n):
    return torch.randn(n, D, generator=torch.Generator().manual_seed(seed))


def _rank_rows(rank):
    """Rank r holds one ssl image whose one person (pid 7 + r) is seen in both views."""
    f = _features(100 + rank, 3)
    return [(0, True, 7 + rank, f[0]), (1, True, 7 + rank, f[1]), (1, False, -2, f[2])]


def _worker(rank, world, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        model = _model(norm="BN")
        extras = _extras(_rank_rows(rank))
        loss, _ = model._consistency(extras, [[0, 1]], [0])
        loss.backward()
        torch.save({"loss": loss.detach(), "grad": extras["reid_features"].grad}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_consistency_uses_the_global_batch_of_two_processes():
    """With one matched person per process (2 images per GPU often give that), L_con was 0 on every
    rank. It is computed over the persons of all ranks: BatchNorm statistics over both, the loss
    equal to the loss of the gathered batch written out by hand, the same on every rank."""
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(2, _free_port(), out_dir), nprocs=2, join=True)
        res = [torch.load(os.path.join(out_dir, f"{r}.pt"), weights_only=True) for r in range(2)]
    model = _model(norm="BN")
    rows = [_rank_rows(r) for r in range(2)]
    h1 = torch.stack([rows[0][0][3], rows[1][0][3]]).requires_grad_(True)
    h2 = torch.stack([rows[0][1][3], rows[1][1][3]]).requires_grad_(True)
    expected = _simsiam(model.ssl_predictor, h1, h2)
    expected.backward()
    for r in range(2):
        assert res[r]["loss"].item() != 0.0, f"rank {r}: L_con is 0 with one matched person per process"
        torch.testing.assert_close(res[r]["loss"], expected.detach(), rtol=1e-5, atol=1e-6)
        # Each rank receives the gradient of the global loss for its own rows, summed over the W
        # identical copies of it (all_gather's backward); DDP's mean over ranks then gives exactly
        # d L_con / d h.
        torch.testing.assert_close(res[r]["grad"][0], 2 * h1.grad[r], rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(res[r]["grad"][1], 2 * h2.grad[r], rtol=1e-4, atol=1e-7)
