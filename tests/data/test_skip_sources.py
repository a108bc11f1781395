"""A loader's skip summary names the annotation file every counted item came from."""
import logging

from hpps_d2.data.datasets.cuhk_sysu import load_cuhk_sysu
from hpps_d2.data.datasets.posetrack21 import load_posetrack21
from hpps_d2.data.datasets.prw import load_prw
from tests.data.test_cuhk_sysu import cuhk  # noqa: F401 (fixture)
from tests.data.test_posetrack21 import pt21  # noqa: F401 (fixture)
from tests.data.test_prw import prw  # noqa: F401 (fixture)


def _summary(caplog, source):
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith(source)]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    return lines[0]


def test_prw_train_skips_name_their_annotation_file(prw, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="hpps_d2")
    load_prw(str(prw), "train")
    line = _summary(caplog, "PRW train")
    anno = prw / "annotations"
    assert f"PRW train ({anno}/<frame>.jpg.mat, frames of {prw / 'frame_train.mat'})" in line
    # every example names the .mat it came from, not only the frame
    twice = "pid labeled twice in one frame (later box set unlabeled)"
    assert f"{twice}: 1 (e.g. {anno / 'c1s1_000151.jpg.mat'} row 3)" in line
    assert f"background only): 1 (e.g. {anno / 'c6s1_000300.jpg.mat'})" in line
    assert f"{anno / 'c1s1_000151.jpg.mat'} row 4" in line  # zero width


def test_prw_frame_listed_twice_names_the_frame_list(prw, caplog):  # noqa: F811
    import scipy.io

    from tests.data.test_prw import TRAIN, _frame_list

    names = list(TRAIN) + [list(TRAIN)[0]]
    scipy.io.savemat(str(prw / "frame_train.mat"), {"img_index_train": _frame_list(names)})
    caplog.set_level(logging.WARNING, logger="hpps_d2")
    load_prw(str(prw), "train")
    line = _summary(caplog, "PRW train")
    where = f"{prw / 'frame_train.mat'} img_index_train[3] c1s1_000151"
    assert f"frame listed twice (later entry dropped): 1 (e.g. {where})" in line


def test_prw_query_skips_name_query_info(prw, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="hpps_d2")
    load_prw(str(prw), "query")
    line = _summary(caplog, "PRW query")
    assert line.startswith(f"PRW query ({prw / 'query_info.txt'})")
    assert f"query box clipped at 0: 1 (e.g. {prw / 'query_info.txt'}:2)" in line


def test_cuhk_sysu_skips_name_their_annotation_file(cuhk, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="hpps_d2")
    load_cuhk_sysu(str(cuhk), "train")
    line = _summary(caplog, "CUHK-SYSU train")
    images_mat = cuhk / "annotation" / "Images.mat"
    train_mat = cuhk / "annotation" / "test" / "train_test" / "Train.mat"
    assert line.startswith(f"CUHK-SYSU train ({images_mat}, {train_mat}, ")
    assert f"non-positive box size (dropped): 3 (e.g. {images_mat} Img[0] 's1.jpg' box 4" in line
    where = f"{images_mat} Img[2] 's3.jpg'"
    assert f"train image without any valid box (skipped): 1 (e.g. {where})" in line
    assert f"(ignored): 1 (e.g. {train_mat} 's1.jpg' (60.0, 60.0, 5.0, 5.0))" in line


def test_cuhk_sysu_gallery_skips_name_their_annotation_file(cuhk, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="hpps_d2")
    load_cuhk_sysu(str(cuhk), "gallery")
    line = _summary(caplog, "CUHK-SYSU gallery")
    testg50 = cuhk / "annotation" / "test" / "train_test" / "TestG50.mat"
    assert line.startswith(f"CUHK-SYSU gallery ({cuhk / 'annotation' / 'Images.mat'}, ")
    assert str(testg50) in line
    assert f"{cuhk / 'annotation' / 'Images.mat'} Img[5] 's12.jpg'" in line


def test_posetrack21_skips_name_their_annotation_file(pt21, caplog):  # noqa: F811
    caplog.set_level(logging.WARNING, logger="hpps_d2")
    load_posetrack21(str(pt21), "train")
    line = _summary(caplog, "PoseTrack21 train")
    train_json = pt21 / "posetrack_person_search" / "train.json"
    assert line.startswith(f"PoseTrack21 train ({train_json})")
    where = f"{train_json} images[1] 'images/train/000001_bonn_train/000001.jpg'"
    assert f"background only): 1 (e.g. {where})" in line
