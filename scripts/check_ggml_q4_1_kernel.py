#!/usr/bin/env python3
"""Checks `scripts/numpy_llama.py --act-quant` against ggml itself.

Calls `quantize_row_q8_1` and `ggml_vec_dot_q4_1_q8_1` from the
`libggml-cpu` that llama-cpp-python loads (through ctypes) on one real Q4_1
weight matrix and a random input, and compares with numpy_llama's emulation
and with plain f32 arithmetic on the dequantized weights.

Usage: scripts/check_ggml_q4_1_kernel.py MODEL.gguf [--tensor blk.3.ffn_up.weight]
Needs: numpy, gguf, llama-cpp-python.
"""
import argparse
import ctypes
import sys
from pathlib import Path

import llama_cpp
import numpy as np
from gguf import GGMLQuantizationType as QT
from gguf import GGUFReader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from numpy_llama import QK, Matrix, quantize_q8  # noqa: E402

Q8_1_BLOCK_BYTES = 36  # f16 d, f16 s, 32 x int8


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--tensor", default="blk.3.ffn_up.weight")
    args = ap.parse_args()

    lib = ctypes.CDLL(str(Path(llama_cpp.__file__).parent / "lib" / "libggml-cpu.so"))
    lib.ggml_cpu_init()  # fills the f16 conversion tables
    lib.quantize_row_q8_1.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    lib.ggml_vec_dot_q4_1_q8_1.argtypes = [
        ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
        ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]

    tensors = {t.name: t for t in GGUFReader(args.model).tensors}
    tensor = tensors[args.tensor]
    if tensor.tensor_type != QT.Q4_1:
        sys.exit(f"{args.tensor} is {tensor.tensor_type.name}, not Q4_1")
    m = Matrix(tensor)
    raw = np.ascontiguousarray(np.asarray(tensor.data))
    rows, n = m.w.shape
    x = (np.random.default_rng(0).standard_normal((1, n)) * 3).astype(np.float32)

    q8 = np.zeros(n // QK * Q8_1_BLOCK_BYTES, dtype=np.uint8)
    lib.quantize_row_q8_1(x.ctypes.data, q8.ctypes.data, n)
    ggml = np.zeros(rows, dtype=np.float32)
    out = ctypes.c_float()
    for r in range(rows):
        lib.ggml_vec_dot_q4_1_q8_1(n, ctypes.byref(out), 0, raw[r].ctypes.data, 0,
                                   q8.ctypes.data, 0, 1)
        ggml[r] = out.value

    q, d, s = quantize_q8(x)
    blocks = q8.reshape(n // QK, Q8_1_BLOCK_BYTES)
    gd = blocks[:, 0:2].copy().view(np.float16)[:, 0].astype(np.float32)
    gs = blocks[:, 2:4].copy().view(np.float16)[:, 0].astype(np.float32)
    gq = blocks[:, 4:].copy().view(np.int8).astype(np.float32)
    same_blocks = np.array_equal(gd, d[0]) and np.array_equal(gs, s[0]) and np.array_equal(gq, q[0])
    emulated = m.matmul(x, act_quant=True)[0]
    exact = (x @ m.w.T)[0]
    print(f"{args.tensor} [{rows} x {n}], |ggml| max {np.abs(ggml).max():.3f}")
    print(f"Q8_1 blocks identical to ggml's: {same_blocks}")
    print(f"emulated Q4_1 x Q8_1 vs ggml: max abs diff {np.abs(emulated - ggml).max():.3e}")
    print(f"plain f32 vs ggml:            max abs diff {np.abs(exact - ggml).max():.3e}")
    return 0 if same_blocks and np.abs(emulated - ggml).max() < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
