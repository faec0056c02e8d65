"""The shipped prefilter keeps the frames that matter: at its trained threshold, ≥ 99 % of the held-out
frames (the label-free set its training set aside) in which the unsplit teacher finds a person."""

import json

import pytest

from splitinf.cli import main


def evaluate(capsys, *options: str) -> dict:
    assert main(["eval-prefilter", "--frame-step", "200", "--json", *options]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_prefilter_runs_end_to_end_and_keeps_the_first_held_out_frames_with_people(capsys):
    result = evaluate(capsys, "--images", "1", "--held-out", "40")
    assert (result["held_out_frames"], result["images"]) == (40, 1)
    assert result["recall"] >= 0.99 and result["threshold"] < 0.01  # the trained threshold, a low one
    assert set(result["videos"]) == {"intel-sample-videos/one-by-one-person-detection.mp4",
                                     "intel-sample-videos/car-detection.mp4"}


@pytest.mark.slow
def test_the_shipped_prefilter_keeps_99_percent_of_held_out_frames_with_people(capsys):
    result = evaluate(capsys, "--images", "1")
    assert result["held_out_frames"] > 500  # the whole held-out fifth
    assert result["recall"] >= 0.99
