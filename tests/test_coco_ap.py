"""The evaluator on tiny hand-made COCO data where the AP is known exactly."""

import pytest
import torch

from splitinf.evaluation.coco_ap import coco_ap, pseudo_ground_truth, to_coco_results

GT = {
    "images": [{"id": 1, "height": 200, "width": 200}, {"id": 2, "height": 200, "width": 200}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 100, 100], "area": 10000, "iscrowd": 0},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [50, 50, 100, 100], "area": 10000, "iscrowd": 0},
        {"id": 3, "image_id": 2, "category_id": 3, "bbox": [0, 0, 40, 40], "area": 1600, "iscrowd": 0},
    ],
    "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
}


def det(image_id, box, score=0.9, category=1):
    return {"image_id": image_id, "category_id": category, "bbox": box, "score": score}


def test_perfect_detections_give_ap_one():
    results = [det(1, [0, 0, 100, 100]), det(2, [50, 50, 100, 100])]
    assert coco_ap(GT, results, category_ids=[1]) == {"ap": 1.0, "ap50": 1.0, "ap75": 1.0}


def test_half_recall_gives_51_of_101_recall_points():
    assert coco_ap(GT, [det(1, [0, 0, 100, 100])], category_ids=[1])["ap"] == pytest.approx(51 / 101)


def test_iou_072_counts_at_5_of_10_thresholds():
    # IoU 0.72 matches at thresholds .50 .55 .60 .65 .70 and misses at .75 … .95.
    results = [det(1, [0, 0, 100, 72]), det(2, [50, 50, 100, 72])]
    scores = coco_ap(GT, results, category_ids=[1])
    assert scores["ap50"] == 1.0 and scores["ap75"] == 0.0
    assert scores["ap"] == pytest.approx(0.5)


def test_false_positive_ranked_first_lowers_precision():
    results = [det(1, [150, 150, 40, 40], score=0.95), det(1, [0, 0, 100, 100], 0.9), det(2, [50, 50, 100, 100], 0.8)]
    # precision at recall 0.5 is 1/2, at recall 1.0 is 2/3; interpolated precision is 2/3 everywhere.
    assert coco_ap(GT, results, category_ids=[1])["ap"] == pytest.approx(2 / 3, abs=1e-6)


def test_restricting_categories_ignores_others_and_no_detections_is_zero():
    assert coco_ap(GT, [det(2, [0, 0, 40, 40], category=3)], category_ids=[1])["ap"] == 0.0
    assert coco_ap(GT, [det(2, [0, 0, 40, 40], category=3)], category_ids=[3])["ap"] == 1.0


def test_torchvision_detections_convert_to_xywh_and_pseudo_gt_keeps_confident_ones():
    detections = {"boxes": torch.tensor([[10.0, 20.0, 50.0, 80.0], [0.0, 0.0, 5.0, 5.0]]),
                  "scores": torch.tensor([0.9, 0.2]), "labels": torch.tensor([1, 1])}
    records = to_coco_results(7, detections)
    assert records[0]["bbox"] == [10.0, 20.0, 40.0, 60.0]
    gt = pseudo_ground_truth({7: detections}, (100, 100), 0.5, [1])
    assert len(gt["annotations"]) == 1
    assert coco_ap(gt, records, category_ids=[1])["ap"] == 1.0
