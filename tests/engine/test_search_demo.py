import os

from detectron2.data import DatasetCatalog

from tests.engine.conftest import REPO, run_tool


def test_search_demo_writes_a_picture(datasets_root, tmp_path):
    from hpps_d2.data.datasets import register_all

    names = register_all(os.path.join(datasets_root, "synth"), prefix="demo_t_")
    assert "demo_t_prw_query" in names
    query = DatasetCatalog.get("demo_t_prw_query")[0]
    out = str(tmp_path / "result.png")
    res = run_tool(
        [
            "tools/search_demo.py", "--config-file", os.path.join(REPO, "configs", "synth", "finetune_prw_shufflenet.yaml"),
            "--query", query["file_name"], "--box", *[str(v) for v in query["query"]["bbox"]],
            "--gallery", "synth_prw_gallery", "--query-pid", str(query["query"]["person_id"]),
            "--topk", "3", "--det-thresh", "0.0", "--max-gallery", "4", "--out", out,
            "INPUT.MIN_SIZE_TEST", "160", "INPUT.MAX_SIZE_TEST", "256",
        ],
        datasets_root,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    assert os.path.getsize(out) > 1000
    ranks = [x for x in res.stdout.splitlines() if x.startswith("#")]
    assert len(ranks) == 3  # one best match per gallery image, top 3 of 4
    sims = [float(x.split("similarity=")[1].split()[0]) for x in ranks]
    assert sims == sorted(sims, reverse=True)
