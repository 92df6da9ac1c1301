#!/usr/bin/env python3
"""Generates compcode_v1.onnx: the fixed-weight competitive-code filter bank of palmgate-matcher.

    pip install onnx numpy
    python3 matcher/models/gen_compcode_v1.py   # writes matcher/models/compcode_v1.onnx

Variants for experiments (evaluate with `palmgate eval --model FILE`; see docs/matcher.md):
    python3 matcher/models/gen_compcode_v1.py --aspect 1.0 --out /tmp/aspect1.onnx

Contract (what a replacement model must keep):
    input  "roi"        float32 [1, 1, 128, 128]  palm ROI, grey levels scaled to [0, 1]
    output "responses"  float32 [1, 6, 24, 24]    per cell and orientation k (angle k*pi/6) a filter
                                                  response; the cell's code is the orientation with the
                                                  smallest (most negative) response.

Graph: Pad(reflect, 16) -> Conv(6 x 45 x 45, stride 5).
Each 45 x 45 kernel is a zero-mean, unit-L2 real Gabor filter (41 x 41, sigma 6.5, wavelength 13,
aspect 0.5: the envelope is twice as long along the crease as across it) convolved with the 5 x 5
box that averages a cell. Averaging the responses over a cell and then sampling every 5th pixel is
the same linear map as one strided convolution with the combined kernel, so the graph computes
only the 576 responses per orientation the template needs (cells of 5 px centred at 6, 11, ..., 121:
the central 120 x 120 pixels). The plain-Rust golden test in matcher/src/features.rs recomputes the
same responses the long way (full-resolution Gabor responses, then cell averages) and compares.
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ORIENTATIONS = 6
GABOR_SIZE = 41
SIGMA = 6.5
WAVELENGTH = 13.0
ASPECT = 0.5
CELL = 5
GRID = 24
ROI = 128


def gabor(theta, size=GABOR_SIZE, sigma=SIGMA, wavelength=WAVELENGTH, aspect=ASPECT):
    half = size // 2
    y, x = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float64)
    across = x * np.cos(theta) + y * np.sin(theta)
    along = -x * np.sin(theta) + y * np.cos(theta)
    g = np.exp(-(across ** 2 + (aspect * along) ** 2) / (2 * sigma ** 2)) * np.cos(
        2 * np.pi * across / wavelength)
    g -= g.mean()
    g /= np.sqrt((g ** 2).sum())
    return g


def combined_kernel(theta, size, **gabor_args):
    g = gabor(theta, size, **gabor_args)
    out = np.zeros((size + CELL - 1, size + CELL - 1))
    for dy in range(CELL):
        for dx in range(CELL):
            out[dy:dy + size, dx:dx + size] += g
    return out / (CELL * CELL)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=GABOR_SIZE, help="Gabor kernel side (odd)")
    parser.add_argument("--sigma", type=float, default=SIGMA)
    parser.add_argument("--wavelength", type=float, default=WAVELENGTH)
    parser.add_argument("--aspect", type=float, default=ASPECT)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                      "compcode_v1.onnx"))
    args = parser.parse_args()
    kernel = args.size + CELL - 1  # 39 by default
    # (ROI + PAD_BEFORE + PAD_AFTER - KERNEL) / CELL + 1 == GRID; cells centred on the ROI.
    total_pad = (GRID - 1) * CELL + kernel - ROI
    pad_before, pad_after = total_pad // 2, total_pad - total_pad // 2
    weights = np.stack([
        combined_kernel(np.pi * k / ORIENTATIONS, args.size, sigma=args.sigma,
                        wavelength=args.wavelength, aspect=args.aspect)
        for k in range(ORIENTATIONS)])
    weights = weights[:, None, :, :].astype(np.float32)

    pads = numpy_helper.from_array(
        np.array([0, 0, pad_before, pad_before, 0, 0, pad_after, pad_after], dtype=np.int64), "pads")
    w = numpy_helper.from_array(weights, "gabor_cells")
    nodes = [
        helper.make_node("Pad", ["roi", "pads"], ["padded"], mode="reflect", name="reflect_pad"),
        helper.make_node("Conv", ["padded", "gabor_cells"], ["responses"], strides=[CELL, CELL],
                         kernel_shape=[kernel, kernel], name="gabor_cell_conv"),
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
    out = args.out
    onnx.save(model, out)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")


if __name__ == "__main__":
    main()
