#!/usr/bin/env python3
"""Generates compcode_v1.onnx: the fixed-weight competitive-code filter bank of palmgate-matcher.

    pip install onnx numpy
    python3 matcher/models/gen_compcode_v1.py   # writes matcher/models/compcode_v1.onnx

Contract (what a replacement model must keep):
    input  "roi"        float32 [1, 1, 128, 128]  palm ROI, grey levels scaled to [0, 1]
    output "responses"  float32 [1, 6, 24, 24]    per cell and orientation k (angle k*pi/6) a filter
                                                  response; the cell's code is the orientation with the
                                                  smallest (most negative) response.

Graph: Pad(reflect, 13) -> Conv(6 x 39 x 39, stride 5).
Each 39 x 39 kernel is a zero-mean, unit-L2 real Gabor filter (35 x 35, sigma 5.6, wavelength 11,
aspect 0.5: the envelope is twice as long along the crease as across it) convolved with the 5 x 5
box that averages a cell. Averaging the responses over a cell and then sampling every 5th pixel is
the same linear map as one strided convolution with the combined kernel, so the graph computes
only the 576 responses per orientation the template needs (cells of 5 px centred at 6, 11, ..., 121:
the central 120 x 120 pixels). The plain-Rust golden test in matcher/src/features.rs recomputes the
same responses the long way (full-resolution Gabor responses, then cell averages) and compares.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ORIENTATIONS = 6
GABOR_SIZE = 35
SIGMA = 5.6
WAVELENGTH = 11.0
ASPECT = 0.5
CELL = 5
GRID = 24
ROI = 128
KERNEL = GABOR_SIZE + CELL - 1  # 39
# (ROI + 2 * PAD - KERNEL) / CELL + 1 == GRID
PAD = ((GRID - 1) * CELL + KERNEL - ROI) // 2  # 13


def gabor(theta):
    half = GABOR_SIZE // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    across = x * np.cos(theta) + y * np.sin(theta)
    along = -x * np.sin(theta) + y * np.cos(theta)
    g = np.exp(-(across ** 2 + (ASPECT * along) ** 2) / (2 * SIGMA ** 2)) * np.cos(
        2 * np.pi * across / WAVELENGTH)
    g -= g.mean()
    g /= np.sqrt((g ** 2).sum())
    return g


def combined_kernel(theta):
    g = gabor(theta)
    out = np.zeros((KERNEL, KERNEL))
    for dy in range(CELL):
        for dx in range(CELL):
            out[dy:dy + GABOR_SIZE, dx:dx + GABOR_SIZE] += g
    return out / (CELL * CELL)


def main():
    assert (ROI + 2 * PAD - KERNEL) // CELL + 1 == GRID
    weights = np.stack([combined_kernel(np.pi * k / ORIENTATIONS) for k in range(ORIENTATIONS)])
    weights = weights[:, None, :, :].astype(np.float32)

    pads = numpy_helper.from_array(np.array([0, 0, PAD, PAD, 0, 0, PAD, PAD], dtype=np.int64), "pads")
    w = numpy_helper.from_array(weights, "gabor_cells")
    nodes = [
        helper.make_node("Pad", ["roi", "pads"], ["padded"], mode="reflect", name="reflect_pad"),
        helper.make_node("Conv", ["padded", "gabor_cells"], ["responses"], strides=[CELL, CELL],
                         kernel_shape=[KERNEL, KERNEL], name="gabor_cell_conv"),
    ]
    graph = helper.make_graph(
        nodes,
        "compcode_v1",
        [helper.make_tensor_value_info("roi", TensorProto.FLOAT, [1, 1, ROI, ROI])],
        [helper.make_tensor_value_info("responses", TensorProto.FLOAT, [1, ORIENTATIONS, GRID, GRID])],
        initializer=[pads, w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="palmgate gen_compcode_v1.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "compcode_v1.onnx")
    onnx.save(model, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
