import json

from splitinf.cli import main


def last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_person_model_with_jpeg_baseline_on_real_images(capsys):
    assert main(["eval", "--images", "3", "--jpeg", "--qualities", "30,90", "--resolutions", "original,input",
                 "--json"]) == 0
    result = last_json(capsys)
    assert result["model"] == "ssdlite_mobilenet_v2_person" and result["images"] == 3
    assert result["dataset"].endswith("instances_all_union.json")
    names = [p["name"] for p in result["pipelines"]]
    assert names == ["unsplit", "jpeg q30 original", "jpeg q90 original", "jpeg q30 input", "jpeg q90 input"]
    sizes = {p["name"]: p["bytes"] for p in result["pipelines"]}
    assert sizes["unsplit"] is None
    assert sizes["jpeg q30 input"] < sizes["jpeg q90 input"] < sizes["jpeg q90 original"]
    assert result["ap50"] >= result["ap"] > 0  # AP at IoU 0.5 bounds the average over stricter IoUs


def test_fidelity_of_the_model_against_itself_is_perfect(capsys):
    assert main(["eval", "--fidelity", "intel-sample-videos/one-by-one-person-detection.mp4", "--frames", "4",
                 "--frame-step", "260", "--json"]) == 0
    result = last_json(capsys)
    assert result["mode"] == "fidelity" and result["images"] == 4
    assert result["ap"] == 1.0 and result["ap50"] == 1.0


def test_eval_of_a_coco_model_defaults_to_the_val_images(capsys):
    assert main(["eval", "--model", "ssdlite320_mobilenet_v3_large", "--images", "2", "--json"]) == 0
    result = last_json(capsys)
    assert result["dataset"].endswith("instances_val2017_union.json") and result["images"] == 2
