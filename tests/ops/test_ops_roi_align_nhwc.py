"""The channels-last RoIAlign forward (rcnn.ops.roi_align_nhwc) against torchvision's kernel: equal values
(bitwise, as the arithmetic is the same) for both layouts, aligned or not, fixed and adaptive sampling,
boxes off the map and degenerate ones; bad input errors; when RoIAlign uses it."""

import os
import subprocess
import sys

import numba
import pytest
import torch
import torchvision

from rcnn.ops import RoIAlign
from rcnn.ops.roi_align_nhwc import roi_align_nhwc


def random_rois(g: torch.Generator, n: int, images: int, height: float, width: float) -> torch.Tensor:
    """(n, 5) ``[b, x1, y1, x2, y2]`` in image pixels; some start outside, one degenerate, one wholly out."""
    size = torch.tensor([width, height])
    xy = torch.rand(n, 2, generator=g) * size * 1.2 - size * 0.1
    wh = torch.rand(n, 2, generator=g) * size * 0.7
    boxes = torch.cat([xy, xy + wh], dim=1)
    boxes[0] = torch.tensor([5.0, 5.0, 5.0, 5.0])
    boxes[1] = torch.tensor([-40.0, -40.0, -20.0, -10.0])
    batch = torch.randint(0, images, (n, 1), generator=g).float()
    return torch.cat([batch, boxes], dim=1)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("ratio", [0, 1, 2])
@pytest.mark.parametrize("output_size", [(7, 7), (3, 5)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_equal_to_torchvision(aligned, ratio, output_size, channels_last):
    g = torch.Generator().manual_seed(ratio + 10 * aligned)
    features = torch.randn(3, 6, 13, 17, generator=g)
    scale = 0.25
    rois = random_rois(g, 40, 3, 13 / scale, 17 / scale)
    expected = torchvision.ops.roi_align(features, rois, output_size, scale, ratio, aligned)
    if channels_last:
        features = features.contiguous(memory_format=torch.channels_last)
    got = roi_align_nhwc(features, rois, output_size, scale, ratio, aligned)
    assert got.shape == expected.shape
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_no_rois_and_one_channel():
    features = torch.randn(2, 1, 9, 9)
    empty = roi_align_nhwc(features, torch.zeros(0, 5), (2, 2), 1.0, 2, False)
    assert empty.shape == (0, 1, 2, 2)
    rois = torch.tensor([[1.0, 0.5, 1.0, 7.5, 6.0]])
    got = roi_align_nhwc(features, rois, (2, 2), 1.0, 2, False)
    torch.testing.assert_close(got, torchvision.ops.roi_align(features, rois, (2, 2), 1.0, 2, False))


def test_thread_count_follows_torch_and_is_restored():
    before = numba.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        features = torch.randn(1, 4, 8, 8)
        roi_align_nhwc(features, torch.tensor([[0.0, 1.0, 1.0, 6.0, 6.0]]), (2, 2), 1.0, 2, False)
    finally:
        torch.set_num_threads(previous)
    assert numba.get_num_threads() == before


def test_a_one_thread_process_stays_one_thread():
    """numba's OpenMP threading layer can share torch's libgomp (it does in a tool's process, where torch is
    imported first), and then numba.set_num_threads sets torch's thread count too: restoring numba's count
    (one per core) after the kernel must leave torch at the process's 1 thread (``OMP_NUM_THREADS=1``)."""
    code = (
        "import torch\n"
        "from rcnn.ops.roi_align_nhwc import roi_align_nhwc\n"
        "box = torch.tensor([[0.0, 1.0, 1.0, 6.0, 6.0]])\n"
        "roi_align_nhwc(torch.randn(1, 4, 8, 8), box, (2, 2), 1.0, 2, False)\n"
        "print(torch.get_num_threads())\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1"], out.stdout + out.stderr


def test_bad_input_is_an_error_naming_the_problem():
    features = torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match="float32 CPU tensor"):
        roi_align_nhwc(features.double(), torch.zeros(1, 5), (2, 2), 1.0, 2, False)
    with pytest.raises(ValueError, match=r"rois must be \(R, 5\)"):
        roi_align_nhwc(features, torch.zeros(3, 4), (2, 2), 1.0, 2, False)
    with pytest.raises(ValueError, match=r"batch indices must be in \[0, 2\)"):
        roi_align_nhwc(features, torch.tensor([[2.0, 0.0, 0.0, 4.0, 4.0]]), (2, 2), 1.0, 2, False)


def test_roi_align_module_uses_it_without_gradients_only():
    g = torch.Generator().manual_seed(3)
    features = torch.randn(2, 5, 12, 12, generator=g)
    boxes = [
        torch.tensor([[2.0, 3.0, 30.0, 40.0], [0.0, 0.0, 47.0, 47.0]]),
        torch.tensor([[8.0, 8.0, 20.0, 16.0]]),
    ]
    pooler = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=2)
    expected = torchvision.ops.roi_align(features, boxes, (7, 7), 0.25, 2, False)
    with torch.inference_mode():
        fast = pooler(features, boxes)
    assert fast.is_contiguous(memory_format=torch.channels_last)  # the NHWC kernel ran
    torch.testing.assert_close(fast, expected, rtol=0, atol=1e-6)
    plain = RoIAlign((7, 7), spatial_scale=0.25, sampling_ratio=2, cpu_kernel=False)
    with torch.inference_mode():
        assert plain(features, boxes).is_contiguous()  # torchvision's kernel: NCHW output
    # bf16 features (autocast inference): pooled in float32, returned in bf16
    with torch.inference_mode():
        half = pooler(features.bfloat16(), boxes)
    assert half.dtype == torch.bfloat16
    expected_half = torchvision.ops.roi_align(features.bfloat16().float(), boxes, (7, 7), 0.25, 2, False)
    torch.testing.assert_close(half.float(), expected_half.bfloat16().float())
    # with gradients to the features, the training path (separable backward) is used and still exact
    x = features.clone().requires_grad_(True)
    out = pooler(x, boxes)
    torch.testing.assert_close(out.detach(), expected, rtol=0, atol=1e-6)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == features.shape
