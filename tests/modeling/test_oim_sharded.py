"""
Sharded OIM (issue 13) against the OIM cross-entropy written out by hand over the whole table and
queue, on W = 1, 2 and 3 gloo processes with the same global batch: loss, feature gradients and
the table after the update.
"""
import os
import socket
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from hpps_d2.modeling.oim import OIMLoss
from hpps_d2.modeling.oim_sharded import ShardedOIMLoss, shard_range

D, L, Q, SCALE = 6, 10, 4, 30.0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unit(t):
    return t / t.norm(dim=1, keepdim=True)


def _tables():
    g = torch.Generator().manual_seed(5)
    return _unit(torch.randn(L, D, generator=g)), _unit(torch.randn(Q, D, generator=g))


#: The global batch: identity 3 twice (on two ranks for W = 2, 3: the update compounds in rank
#: order), three unlabeled rows (the queue), identity 9 in the last shard.
def _global_batch():
    g = torch.Generator().manual_seed(11)
    x = _unit(torch.randn(9, D, generator=g))
    y = torch.tensor([3, 0, -1, 9, 3, 5, -1, -1, 7])
    return x, y


#: rows [a, b) of the global batch per rank; W = 3: rank 2 has an empty batch and must still take
#: part in the collectives (its shard's columns serve the other ranks' rows).
SPLITS = {1: [(0, 9)], 2: [(0, 4), (4, 9)], 3: [(0, 4), (4, 8), (8, 8)]}


def _rank_batch(world, rank):
    x, y = _global_batch()
    a, b = SPLITS[world][rank]
    return x[a:b].clone(), y[a:b].clone()


def _expected(world):
    """Per rank: the hand-written loss and gradient over the full table; the table after the update
    (the rule applied row by row in rank order, the queue FIFO)."""
    lut, cq = _tables()
    out = []
    for r in range(world):
        x, y = _rank_batch(world, r)
        x = x.clone().requires_grad_(True)
        lab = y != -1
        if lab.any():
            logits = SCALE * x[lab] @ torch.cat([lut, cq]).t()
            loss = F.cross_entropy(logits, y[lab])
            loss.backward()
            grad = x.grad.clone()
        else:
            loss, grad = torch.zeros(()), torch.zeros_like(x)
        out.append((loss.detach(), grad))
    new_lut, new_cq, head = lut.clone(), cq.clone(), 0
    for r in range(world):
        x, y = _rank_batch(world, r)
        for xi, yi in zip(x, y):
            if yi >= 0:
                row = 0.5 * new_lut[yi] + 0.5 * xi
                new_lut[yi] = row / row.norm()
            else:
                new_cq[head] = xi
                head = (head + 1) % Q
    return out, new_lut, new_cq


def _run(rank, world, port, out_dir, chunk_rows):
    if world > 1:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        lut, cq = _tables()
        oim = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE, chunk_rows=chunk_rows)
        start, count = shard_range(L, world, rank)
        assert oim.lut.shape == (count, D) and oim.row_start == start
        oim.lut.copy_(lut[start : start + count])
        oim.cq.copy_(cq)
        oim.train()
        x, y = _rank_batch(world, rank)
        x.requires_grad_(True)
        loss = oim(x, y)
        loss.backward()
        oim.apply_pending_updates()
        torch.save({"loss": loss.detach(), "grad": x.grad, "lut": oim.lut, "cq": oim.cq, "start": start},
                   os.path.join(out_dir, f"{rank}.pt"))
    finally:
        if world > 1:
            dist.destroy_process_group()


def _check(world, results):
    expected, new_lut, new_cq = _expected(world)
    for r in range(world):
        res = results[r]
        torch.testing.assert_close(res["loss"], expected[r][0], rtol=1e-6, atol=1e-6)  # float32: ~17 +- 4e-6
        torch.testing.assert_close(res["grad"], expected[r][1], rtol=1e-5, atol=1e-6)
        n = res["lut"].shape[0]
        torch.testing.assert_close(res["lut"], new_lut[res["start"] : res["start"] + n], rtol=0, atol=1e-6)
        torch.testing.assert_close(res["cq"], new_cq, rtol=0, atol=0)
    assert sum(results[r]["lut"].shape[0] for r in range(world)) == L


def test_shard_ranges_cover_the_table_once():
    # Partial FC's split: the first L % W ranks hold one row more
    assert [shard_range(10, 3, r) for r in range(3)] == [(0, 4), (4, 3), (7, 3)]
    assert [shard_range(2, 3, r) for r in range(3)] == [(0, 1), (1, 1), (2, 0)]


@pytest.mark.parametrize("chunk_rows", [3, 65536])
def test_one_process_equals_the_hand_written_loss(tmp_path, chunk_rows):
    _run(0, 1, None, str(tmp_path), chunk_rows)
    _check(1, {0: torch.load(tmp_path / "0.pt", weights_only=True)})


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_processes_equal_the_hand_written_loss(world):
    """Blocks of 2 rows, so every shard's log-sum-exp runs over several blocks."""
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_run, args=(world, _free_port(), out_dir, 2), nprocs=world, join=True)
        results = {r: torch.load(os.path.join(out_dir, f"{r}.pt"), weights_only=True) for r in range(world)}
    _check(world, results)


def test_one_process_matches_the_replicated_module():
    lut, cq = _tables()
    x, y = _global_batch()
    losses, grads = [], []
    for cls, kw in ((OIMLoss, {}), (ShardedOIMLoss, {"chunk_rows": 4})):
        m = cls(D, L, queue_size=Q, scale=SCALE, **kw)
        m.lut.copy_(lut), m.cq.copy_(cq)
        xi = x.clone().requires_grad_(True)
        loss = m(xi, y)
        loss.backward()
        losses.append(loss.detach()), grads.append(xi.grad)
    torch.testing.assert_close(losses[1], losses[0], rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-7)


def test_low_precision_table_stores_rows_in_its_dtype():
    m = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE, table_dtype=torch.bfloat16)
    lut, cq = _tables()
    m.lut.copy_(lut), m.cq.copy_(cq)
    x, y = _global_batch()
    xi = x.clone().requires_grad_(True)
    m(xi, y).backward()
    m.apply_pending_updates()
    assert m.lut.dtype == torch.bfloat16 and m.lut.shape == (L, D)
    _, new_lut, _ = _expected(1)
    # bfloat16 keeps ~3 significant digits
    torch.testing.assert_close(m.lut.float(), new_lut, rtol=0, atol=1e-2)


# -- checkpoints: the whole table, whatever W was ------------------------------------------------ #
def _save_on(rank, world, port, path):
    """One step on ``world`` processes, then a checkpoint as SafeCheckpointer writes it."""
    from hpps_d2.modeling.oim_sharded import gathered_tables

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        lut, cq = _tables()
        oim = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE)
        start, count = shard_range(L, world, rank)
        oim.lut.copy_(lut[start : start + count]), oim.cq.copy_(cq)
        x, y = _rank_batch(world, rank)
        oim(x.requires_grad_(True), y).backward()
        oim.apply_pending_updates()
        with pytest.raises(RuntimeError, match="gathered_tables"):
            oim.state_dict()  # a shard alone is never written as if it were the table
        with gathered_tables(oim):
            if rank == 0:
                torch.save(oim.state_dict(), path)
    finally:
        dist.destroy_process_group()


def _load_on(rank, world, port, path, out_dir):
    from hpps_d2.modeling.oim_sharded import shard_checkpoint_tables

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        oim = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE)
        sd = torch.load(path, weights_only=True)
        shard_checkpoint_tables(oim, sd)  # what SafeCheckpointer does before fvcore compares shapes
        assert sd["lut"].shape == oim.lut.shape
        oim.load_state_dict(sd)
        torch.save({"lut": oim.lut, "start": oim.row_start, "cq": oim.cq}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_checkpoint_saved_on_two_processes_loads_on_one_and_three(tmp_path):
    path = str(tmp_path / "oim.pth")
    mp.spawn(_save_on, args=(2, _free_port(), path), nprocs=2, join=True)
    _, new_lut, new_cq = _expected(2)
    saved = torch.load(path, weights_only=True)
    assert saved["lut"].shape == (L, D)
    torch.testing.assert_close(saved["lut"], new_lut, rtol=0, atol=1e-6)
    # one process, no process group: the whole table as it is
    one = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE)
    one.load_state_dict(saved)
    torch.testing.assert_close(one.lut, saved["lut"], rtol=0, atol=0)
    for world in (2, 3):
        out = tmp_path / f"w{world}"
        out.mkdir()
        mp.spawn(_load_on, args=(world, _free_port(), path, str(out)), nprocs=world, join=True)
        rows = [torch.load(out / f"{r}.pt", weights_only=True) for r in range(world)]
        torch.testing.assert_close(torch.cat([r["lut"] for r in rows]), saved["lut"], rtol=0, atol=0)
        assert [r["start"] for r in rows] == [shard_range(L, world, r)[0] for r in range(world)]
        for r in rows:
            torch.testing.assert_close(r["cq"], new_cq, rtol=0, atol=0)


# -- negative sampling (Partial FC) --------------------------------------------------------------- #
def test_negative_sampling_is_the_cross_entropy_over_the_sampled_rows():
    lut, cq = _tables()
    x, y = _global_batch()
    m = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE, sample_rate=0.5, seed=3)
    m.lut.copy_(lut), m.cq.copy_(cq)
    xi = x.clone().requires_grad_(True)
    loss = m(xi, y)
    loss.backward()
    rows = m.last_sampled
    positives = set(y[y >= 0].tolist())  # {0, 3, 5, 7, 9}: 5 of 10 rows, all kept
    assert positives <= set(rows.tolist()) and len(rows) == 5
    # by hand: softmax over the sampled rows and the whole queue, targets re-indexed
    xr = x.clone().requires_grad_(True)
    lab = y >= 0
    logits = SCALE * xr[lab] @ torch.cat([lut[rows], cq]).t()
    target = torch.searchsorted(rows, y[lab])
    expected = F.cross_entropy(logits, target)
    expected.backward()
    torch.testing.assert_close(loss.detach(), expected.detach(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(xi.grad, xr.grad, rtol=1e-5, atol=5e-6)  # float32 at logit scale 30
    # a new sample every forward, reproducible from (seed, step); evaluation uses every row
    assert int(m.sample_step) == 1 and "sample_step" in m.state_dict()
    m2 = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE, sample_rate=0.3, seed=3)
    m2(x, torch.tensor([-1] * 9))
    first = m2.last_sampled.clone()
    m2(x, torch.tensor([-1] * 9))
    assert len(first) == 3 and not torch.equal(first, m2.last_sampled)
    m3 = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE, sample_rate=0.3, seed=3)
    m3(x, torch.tensor([-1] * 9))
    assert torch.equal(m3.last_sampled, first)
    m3.eval()
    full = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE).eval()
    for mod in (m3, full):
        mod.lut.copy_(lut), mod.cq.copy_(cq)
    torch.testing.assert_close(m3(x, y), full(x, y), rtol=0, atol=0)


def _run_sampled(rank, world, port, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        lut, cq = _tables()
        oim = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE, chunk_rows=2, sample_rate=0.6, seed=3)
        start, count = shard_range(L, world, rank)
        oim.lut.copy_(lut[start : start + count]), oim.cq.copy_(cq)
        x, y = _rank_batch(world, rank)
        x.requires_grad_(True)
        loss = oim(x, y)
        loss.backward()
        torch.save({"loss": loss.detach(), "grad": x.grad, "rows": oim.last_sampled + start},
                   os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_negative_sampling_on_two_processes_is_the_cross_entropy_over_every_shards_sample():
    """Each shard samples its own rows (the global batch's positives it holds, plus random others);
    the normaliser runs over the union of the shards' samples and the queue."""
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_run_sampled, args=(2, _free_port(), out_dir), nprocs=2, join=True)
        res = [torch.load(os.path.join(out_dir, f"{r}.pt"), weights_only=True) for r in range(2)]
    lut, cq = _tables()
    rows = torch.cat([r["rows"] for r in res])
    _, y_all = _global_batch()
    # shard 0 holds rows 0-4 (positives 0, 3), shard 1 rows 5-9 (5, 7, 9): int(0.6 * 5) = 3 rows each
    assert rows.tolist() == sorted(set(rows.tolist())) and len(rows) == 6
    assert set(y_all[y_all >= 0].tolist()) <= set(rows.tolist())
    for r in range(2):
        # by hand, in float64: the loss runs in float32 at logit scale 30 (its gradient was measured
        # 1.0e-5 from float64 where F.cross_entropy in float32 is 2.4e-6; every logit carries 30x
        # the rounding of its cosine)
        x, y = _rank_batch(2, r)
        x = x.double().requires_grad_(True)
        lab = y >= 0
        logits = SCALE * x[lab] @ torch.cat([lut[rows], cq]).double().t()
        expected = F.cross_entropy(logits, torch.searchsorted(rows, y[lab]))
        expected.backward()
        torch.testing.assert_close(res[r]["loss"].double(), expected.detach(), rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(res[r]["grad"].double(), x.grad, rtol=0, atol=2e-5)


def test_half_precision_features_get_float32_logits_and_their_own_dtype_back():
    lut, cq = _tables()
    x, y = _global_batch()
    m = ShardedOIMLoss(D, L, queue_size=Q, scale=SCALE)
    m.lut.copy_(lut), m.cq.copy_(cq)
    xh = x.to(torch.bfloat16).requires_grad_(True)
    loss = m(xh, y)
    loss.backward()
    assert loss.dtype == torch.float32 and xh.grad.dtype == torch.bfloat16
    # the float32 loss of the bfloat16-rounded features, by hand
    logits = SCALE * xh.detach().float()[y >= 0] @ torch.cat([lut, cq]).t()
    torch.testing.assert_close(loss.detach(), F.cross_entropy(logits, y[y >= 0]), rtol=1e-6, atol=1e-6)


# -- memory: a process never holds the whole table ------------------------------------------------ #
def _peak_of_construction(rank, world, port, num_ids, dim, out_dir):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        with open("/proc/self/clear_refs", "w") as f:  # peak resident set := current
            f.write("5")

        def status(field):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))

        before = status("VmRSS")
        oim = ShardedOIMLoss(dim, num_ids, queue_size=8)
        torch.save({"peak": status("VmHWM") - before, "table": oim.lut.numel() * 4}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_building_a_shard_never_allocates_the_whole_table():
    """2 processes, a 1 GiB table: each may allocate its 512 MiB rows, not the whole table first
    (OIMLoss's constructor allocated L x D before the shard replaced it: the whole table in every
    process, 10 GB each at LUPerson-NL's size, seen as a kill by the OOM killer in bench_oim_sharded)."""
    num_ids, dim = 1 << 20, 256
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_peak_of_construction, args=(2, _free_port(), num_ids, dim, out_dir), nprocs=2, join=True)
        res = [torch.load(os.path.join(out_dir, f"{r}.pt"), weights_only=True) for r in range(2)]
    for r in res:
        assert r["table"] == num_ids // 2 * dim * 4
        assert r["peak"] < 1.25 * r["table"], f"peak {r['peak'] / 2**20:.0f} MiB for a {r['table'] / 2**20:.0f} MiB shard"
