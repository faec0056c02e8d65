import pytest
import torch

from splitinf.data import PERSON_VIDEO, DataError, decode_jpeg, jpeg_bytes, read_image, video_frames


def test_real_video_frames_decode_as_rgb_uint8():
    frames = list(video_frames(PERSON_VIDEO, max_frames=3))
    assert len(frames) == 3
    assert all(f.dtype == torch.uint8 and f.shape == (3, 432, 768) for f in frames)
    assert not torch.equal(frames[0], frames[2]) or frames[0].float().std() > 0


def test_undecodable_image_gives_one_clear_error(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 definitely not a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg cannot be decoded"):
        read_image(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "missing.jpg")


def test_jpeg_round_trip_is_close_and_smaller_at_lower_quality(coco_val_images):
    image = coco_val_images[0]
    high, low = jpeg_bytes(image, 90), jpeg_bytes(image, 10)
    assert len(low) < len(high)
    decoded = decode_jpeg(high)
    assert decoded.shape == image.shape
    assert (decoded.float() - image.float()).abs().mean() < 4.0
    with pytest.raises(ValueError, match="quality must be in 1..100, got 0"):
        jpeg_bytes(image, 0)


def test_unopenable_video_is_refused(tmp_path):
    with pytest.raises(DataError, match="cannot be opened"):
        next(video_frames(tmp_path / "none.mp4"))


def test_read_image_reads_real_coco_file():
    image = read_image("coco-mini/val2017/000000000139.jpg")
    assert image.shape == (3, 426, 640)
