"""The colour-histogram difficulty probe: the feature by hand, and a split whose answer is known."""
import cv2
import numpy as np
import pytest

from hpps_d2.synth.difficulty import BINS, colour_histogram, histogram_search


def test_histogram_of_a_two_colour_box_by_hand():
    img = np.zeros((20, 10, 3), np.uint8)
    img[:10] = (255, 0, 0)  # red upper half
    img[10:] = (0, 0, 255)  # blue lower half
    f = colour_histogram(img, (0, 0, 10, 20))
    n = int(np.prod(BINS))
    # one bin per half, each 1 before the joint L2 normalisation -> 1/sqrt(2) each
    assert np.count_nonzero(f) == 2 and np.allclose(f[f > 0], 1 / np.sqrt(2))
    red = cv2.cvtColor(np.uint8([[[255, 0, 0]]]), cv2.COLOR_RGB2HSV)[0, 0]
    # hue 0 -> bin 0, saturation 255 -> bin 3, value 255 -> bin 3
    assert red[0] == 0 and np.argmax(f[:n]) == (0 * 4 + 3) * 4 + 3
    assert np.argmax(f[n:]) != np.argmax(f[:n])
    assert not colour_histogram(img, (5, 5, 5, 15)).any()  # empty box


def test_distinct_colours_are_found_and_ranked_first(tmp_path):
    colours = {1: (255, 0, 0), 2: (0, 200, 0), 3: (0, 0, 255)}

    def frame(name, cam, people):
        img = np.full((60, 90, 3), 128, np.uint8)
        annos = []
        for i, pid in enumerate(people):
            x = 5 + 30 * i
            img[10:50, x:x + 20] = colours[pid]
            annos.append({"bbox": [x, 10, x + 20, 50], "person_id": pid})
        path = str(tmp_path / name)
        cv2.imwrite(path, img[:, :, ::-1])
        return {"file_name": path, "image_id": name, "height": 60, "width": 90, "camera_id": cam, "annotations": annos}

    gallery = [frame("a.jpg", 1, [1, 2]), frame("b.jpg", 2, [2, 3]), frame("c.jpg", 3, [3, 1])]
    query = [dict({k: gallery[0][k] for k in ("file_name", "image_id", "height", "width", "camera_id")}, query={"bbox": [5, 10, 25, 50], "person_id": 1})]
    result = histogram_search(query, gallery)
    # the one other frame with person 1 ranks first: AP 1, top-1 1 in both camera modes
    assert result["all"]["mAP"] == pytest.approx(100.0) and result["all"]["top1"] == pytest.approx(100.0)
    assert result["cross_cam"]["mAP"] == pytest.approx(100.0)
