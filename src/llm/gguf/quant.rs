//! ggml tensor storage types: block layouts, dequantization to f32 and the
//! reference quantizers the GGUF writer uses.
//!
//! Block layouts (ggml `ggml-common.h`), `d`/`m` are little-endian f16:
//! - `Q4_0`: 32 values in 18 bytes: `d`, 16 bytes of nibbles;
//!   `x[j] = d * (lo(q[j]) - 8)`, `x[j + 16] = d * (hi(q[j]) - 8)`.
//! - `Q4_1`: 32 values in 20 bytes: `d`, `m`, 16 bytes of nibbles;
//!   `x[j] = d * lo(q[j]) + m`, `x[j + 16] = d * hi(q[j]) + m`.
//! - `Q8_0`: 32 values in 34 bytes: `d`, 32 `i8`; `x = d * q`.
//! - `Q6_K`: 256 values in 210 bytes: 128 bytes of low nibbles, 64 bytes of
//!   high 2-bit pairs, 16 `i8` sub-block scales, `d`;
//!   `x = d * scale * (q6 - 32)`.

use half::{bf16, f16};

/// A ggml storage type this crate can read (and for some, write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
    /// 4-bit, symmetric, blocks of 32.
    Q4_0,
    /// 4-bit with minimum, blocks of 32.
    Q4_1,
    /// 8-bit, symmetric, blocks of 32.
    Q8_0,
    /// 6-bit k-quant, super-blocks of 256.
    Q6_K,
}

/// ggml's names for its type ids, for error messages about types this crate
/// does not read.
const GGML_TYPE_NAMES: [(u32, &str); 26] = [
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (9, "Q8_1"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (30, "BF16"),
];

/// ggml's name for a type id (`"Q5_K"`), if the id is one ggml defines.
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    GGML_TYPE_NAMES
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, name)| *name)
}

impl GgmlType {
    /// Every type this crate reads.
    pub const SUPPORTED: [GgmlType; 7] = [
        Self::F32,
        Self::F16,
        Self::BF16,
        Self::Q4_0,
        Self::Q4_1,
        Self::Q8_0,
        Self::Q6_K,
    ];

    /// The type for a ggml type id, `None` when this crate cannot read it.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::SUPPORTED.into_iter().find(|t| t.id() == id)
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q8_0 => 8,
            Self::Q6_K => 14,
            Self::BF16 => 30,
        }
    }

    /// ggml's name of the type.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "F32",
            Self::F16 => "F16",
            Self::BF16 => "BF16",
            Self::Q4_0 => "Q4_0",
            Self::Q4_1 => "Q4_1",
            Self::Q8_0 => "Q8_0",
            Self::Q6_K => "Q6_K",
        }
    }

    /// Values per block.
    pub fn block_len(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => 32,
            Self::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q8_0 => 34,
            Self::Q6_K => 210,
        }
    }

    /// Bytes taken by `n` values, or `None` when `n` is not a whole number of
    /// blocks or the size overflows.
    pub fn byte_len(self, n: u64) -> Option<u64> {
        let block = self.block_len() as u64;
        if !n.is_multiple_of(block) {
            return None;
        }
        (n / block).checked_mul(self.block_bytes() as u64)
    }
}

pub(crate) fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Dequantizes `bytes` (a whole number of blocks of `ty`) to f32.
///
/// The caller guarantees `bytes.len()` is a multiple of `ty.block_bytes()`
/// (the GGUF reader checks every tensor's size before calling this); a
/// trailing partial block is ignored.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let blocks = bytes.chunks_exact(ty.block_bytes());
    let mut out = Vec::with_capacity(blocks.len() * ty.block_len());
    match ty {
        GgmlType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        GgmlType::F16 => out.extend(blocks.map(|b| f16_at(b, 0))),
        GgmlType::BF16 => out.extend(blocks.map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())),
        GgmlType::Q4_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                let q = &b[2..18];
                out.extend(q.iter().map(|&v| d * (f32::from(v & 0x0f) - 8.0)));
                out.extend(q.iter().map(|&v| d * (f32::from(v >> 4) - 8.0)));
            }
        }
        GgmlType::Q4_1 => {
            for b in blocks {
                let d = f16_at(b, 0);
                let m = f16_at(b, 2);
                let q = &b[4..20];
                out.extend(q.iter().map(|&v| d * f32::from(v & 0x0f) + m));
                out.extend(q.iter().map(|&v| d * f32::from(v >> 4) + m));
            }
        }
        GgmlType::Q8_0 => {
            for b in blocks {
                let d = f16_at(b, 0);
                out.extend(b[2..34].iter().map(|&v| d * f32::from(v as i8)));
            }
        }
        GgmlType::Q6_K => {
            for b in blocks {
                dequantize_q6_k_block(b, &mut out);
            }
        }
    }
    out
}

/// One Q6_K super-block (210 bytes) to 256 values, in ggml's order: two
/// halves of 128, each from 64 bytes of `ql`, 32 of `qh` and 8 scales.
fn dequantize_q6_k_block(b: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(b, 208);
    let mut y = [0f32; 256];
    for half in 0..2 {
        let ql = &b[64 * half..64 * half + 64];
        let qh = &b[128 + 32 * half..128 + 32 * half + 32];
        let sc = &b[192 + 8 * half..192 + 8 * half + 8];
        let y = &mut y[128 * half..128 * half + 128];
        for l in 0..32 {
            let is = l / 16;
            let q1 = i32::from((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32;
            let q2 = i32::from((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            let s = |k: usize| d * f32::from(sc[is + k] as i8);
            y[l] = s(0) * q1 as f32;
            y[l + 32] = s(2) * q2 as f32;
            y[l + 64] = s(4) * q3 as f32;
            y[l + 96] = s(6) * q4 as f32;
        }
    }
    out.extend_from_slice(&y);
}

/// Encodes `values` as `ty` with ggml's reference quantizers
/// (`quantize_row_q8_0_ref`, `quantize_row_q4_1_ref`: round half away from
/// zero, scales stored as f16). Fails for types the writer does not produce
/// (`Q4_0`, `Q6_K`) and when `values.len()` is not a multiple of the block.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Result<Vec<u8>, String> {
    if !values.len().is_multiple_of(ty.block_len()) {
        return Err(format!(
            "{} stores blocks of {} values; {} values is not a whole number of blocks",
            ty.name(),
            ty.block_len(),
            values.len()
        ));
    }
    let mut out = Vec::with_capacity(values.len() / ty.block_len() * ty.block_bytes());
    match ty {
        GgmlType::F32 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
        GgmlType::F16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
        GgmlType::BF16 => values
            .iter()
            .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        GgmlType::Q8_0 => {
            for block in values.chunks_exact(32) {
                let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
                let d = amax / 127.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend(block.iter().map(|v| (v * id).round() as i8 as u8));
            }
        }
        GgmlType::Q4_1 => {
            for block in values.chunks_exact(32) {
                let min = block.iter().fold(f32::INFINITY, |a, &v| a.min(v));
                let max = block.iter().fold(f32::NEG_INFINITY, |a, &v| a.max(v));
                let d = (max - min) / 15.0;
                let id = if d != 0.0 { 1.0 / d } else { 0.0 };
                out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
                out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
                let q = |v: f32| (((v - min) * id + 0.5) as u8).min(15);
                out.extend((0..16).map(|j| q(block[j]) | (q(block[j + 16]) << 4)));
            }
        }
        GgmlType::Q4_0 | GgmlType::Q6_K => {
            return Err(format!("writing {} is not supported", ty.name()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 17.0)
            .collect()
    }

    #[test]
    fn float_types_round_trip() {
        let v = ramp(64);
        assert_eq!(
            dequantize(GgmlType::F32, &quantize(GgmlType::F32, &v).unwrap()),
            v
        );
        for ty in [GgmlType::F16, GgmlType::BF16] {
            let back = dequantize(ty, &quantize(ty, &v).unwrap());
            for (a, b) in v.iter().zip(&back) {
                // bf16 keeps 8 mantissa bits: relative error <= 2^-8
                assert!((a - b).abs() <= a.abs() / 256.0 + 1e-6, "{ty:?} {a} {b}");
            }
        }
    }

    #[test]
    fn q8_0_error_is_at_most_half_a_step() {
        let v = ramp(96);
        let bytes = quantize(GgmlType::Q8_0, &v).unwrap();
        assert_eq!(bytes.len(), 3 * 34);
        let back = dequantize(GgmlType::Q8_0, &bytes);
        for (block, back) in v.chunks(32).zip(back.chunks(32)) {
            let amax = block.iter().fold(0f32, |a, x| a.max(x.abs()));
            let d = amax / 127.0;
            for (a, b) in block.iter().zip(back) {
                // half a step, plus the f16 rounding of d times |q| <= 127
                assert!((a - b).abs() <= 0.5 * d + 127.0 * d / 1024.0, "{a} {b}");
            }
        }
    }

    #[test]
    fn q4_1_error_is_at_most_half_a_step() {
        let v = ramp(64);
        let back = dequantize(GgmlType::Q4_1, &quantize(GgmlType::Q4_1, &v).unwrap());
        for (block, back) in v.chunks(32).zip(back.chunks(32)) {
            let min = block.iter().fold(f32::INFINITY, |a, &x| a.min(x));
            let max = block.iter().fold(f32::NEG_INFINITY, |a, &x| a.max(x));
            let d = (max - min) / 15.0;
            for (a, b) in block.iter().zip(back) {
                assert!(
                    (a - b).abs() <= 0.5 * d + (15.0 * d + min.abs()) / 1024.0,
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn constant_block_quantizes_exactly() {
        let v = vec![0.25f32; 32];
        assert_eq!(
            dequantize(GgmlType::Q4_1, &quantize(GgmlType::Q4_1, &v).unwrap()),
            v
        );
        let z = vec![0f32; 32];
        assert_eq!(
            dequantize(GgmlType::Q8_0, &quantize(GgmlType::Q8_0, &z).unwrap()),
            z
        );
    }

    #[test]
    fn hand_built_q4_0_block() {
        // d = 0.5 (f16 0x3800), nibbles: q[0] = lo 0 / hi 15, others 8 / 8.
        let mut b = vec![0x00, 0x38];
        b.push(0xf0);
        b.extend([0x88u8; 15]);
        let x = dequantize(GgmlType::Q4_0, &b);
        assert_eq!(x.len(), 32);
        assert_eq!(x[0], -4.0);
        assert_eq!(x[16], 3.5);
        assert!(x[1..16].iter().chain(&x[17..]).all(|&v| v == 0.0));
    }

    /// Reference values from the `gguf` Python package (gguf 0.19.0):
    /// ```python
    /// import numpy as np, gguf
    /// from gguf.quants import dequantize
    /// from gguf import GGMLQuantizationType as T
    /// b = bytearray(i * 7 % 256 for i in range(210)); b[208:210] = np.float16(0.01).tobytes()
    /// y = dequantize(np.frombuffer(bytes(b), dtype=np.uint8), T.Q6_K)
    /// print(y[[0, 1, 31, 32, 64, 100, 127, 128, 200, 255]])
    /// ```
    #[test]
    fn q6_k_matches_gguf_python() {
        let mut b: Vec<u8> = (0..210).map(|i| (i * 7 % 256) as u8).collect();
        b[208..210].copy_from_slice(&f16::from_f32(0.01).to_le_bytes());
        let y = dequantize(GgmlType::Q6_K, &b);
        assert_eq!(y.len(), 256);
        let reference = [
            (0, -20.484375),
            (1, 14.723_145),
            (31, -4.971_061_7),
            (32, -24.965_332),
            (64, -29.446_29),
            (100, 15.903_397),
            (127, -5.651_207),
            (128, -38.408_203),
            (200, 1.080_230_7),
            (255, 21.754_646),
        ];
        for (idx, want) in reference {
            assert!(
                (y[idx] - want).abs() < 1e-4,
                "y[{idx}] = {} != {want}",
                y[idx]
            );
        }
    }

    #[test]
    fn unsupported_writes_and_partial_blocks_are_refused() {
        assert!(
            quantize(GgmlType::Q6_K, &[0.0; 256])
                .unwrap_err()
                .contains("Q6_K")
        );
        assert!(
            quantize(GgmlType::Q8_0, &[0.0; 33])
                .unwrap_err()
                .contains("33 values")
        );
        assert_eq!(GgmlType::Q4_1.byte_len(64), Some(40));
        assert_eq!(GgmlType::Q4_1.byte_len(65), None);
        assert_eq!(ggml_type_name(13), Some("Q5_K"));
        assert_eq!(GgmlType::from_id(13), None);
        assert_eq!(GgmlType::from_id(3), Some(GgmlType::Q4_1));
    }
}
