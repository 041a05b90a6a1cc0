//! Writing GGUF v3 files: a low-level [`GgufWriter`] (metadata + tensors in
//! ggml naming and dimension order) and [`export_gguf`], which writes a
//! Llama checkpoint the way llama.cpp's converter does (llama.cpp names,
//! Q/K rows permuted to the interleaved RoPE layout, tokenizer metadata), so
//! llama.cpp can run students trained here.

use std::io::Write;
use std::path::Path;

use super::llama::{
    QkOrder, ROPE_FREQS_TENSOR, config_to_gguf, gguf_name, permute_qk_rows, qk_heads,
};
use super::quant::{GgmlType, quantize};
use super::reader::{DEFAULT_ALIGNMENT, GGUF_MAGIC};
use super::value::GgufValue;
use super::vocab::tokenizer_to_gguf;
use crate::llm::config::LlamaConfig;
use crate::llm::error::LlmError;
use crate::llm::rope::frequency_divisors;
use crate::llm::tensor_layout::{expected_tensors, validate_weights};
use crate::llm::tokenizer::TextTokenizer;
use crate::llm::weights::Weights;

struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ggml_type: GgmlType,
    data: Vec<u8>,
}

/// Accumulates metadata and encoded tensors, then writes one GGUF v3 file.
pub struct GgufWriter {
    metadata: Vec<(String, GgufValue)>,
    tensors: Vec<PendingTensor>,
    alignment: u64,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &GgufValue) -> Result<(), String> {
    match v {
        GgufValue::U8(x) => out.push(*x),
        GgufValue::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
        GgufValue::Bool(b) => out.push(u8::from(*b)),
        GgufValue::String(s) => put_string(out, s),
        GgufValue::Array(a) => {
            out.extend_from_slice(&a.elem_type.id().to_le_bytes());
            out.extend_from_slice(&(a.values.len() as u64).to_le_bytes());
            for (i, item) in a.values.iter().enumerate() {
                if item.value_type() != a.elem_type {
                    return Err(format!(
                        "element {i} is {} in an array of {}",
                        item.value_type(),
                        a.elem_type
                    ));
                }
                put_value(out, item)?;
            }
        }
    }
    Ok(())
}

impl GgufWriter {
    /// An empty file with the default alignment (32).
    pub fn new() -> Self {
        Self {
            metadata: Vec::new(),
            tensors: Vec::new(),
            alignment: DEFAULT_ALIGNMENT,
        }
    }

    /// Sets the data alignment (a power of two) and records it as
    /// `general.alignment`.
    pub fn with_alignment(mut self, alignment: u32) -> Result<Self, String> {
        if !alignment.is_power_of_two() {
            return Err(format!("alignment {alignment} is not a power of two"));
        }
        self.alignment = alignment.into();
        self.metadata.retain(|(k, _)| k != "general.alignment");
        self.metadata
            .push(("general.alignment".into(), GgufValue::U32(alignment)));
        Ok(self)
    }

    /// Adds a metadata entry (keys must be unique).
    pub fn add_metadata(&mut self, key: impl Into<String>, value: GgufValue) -> Result<(), String> {
        let key = key.into();
        if self.metadata.iter().any(|(k, _)| *k == key) {
            return Err(format!("metadata key {key:?} added twice"));
        }
        self.metadata.push((key, value));
        Ok(())
    }

    /// Encodes `values` as `ggml_type` and adds the tensor. `dims` are
    /// innermost first (ggml order); the values are in row-major order of the
    /// reversed shape.
    pub fn add_tensor(
        &mut self,
        name: impl Into<String>,
        dims: Vec<u64>,
        ggml_type: GgmlType,
        values: &[f32],
    ) -> Result<(), String> {
        let name = name.into();
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(format!("tensor {name:?} added twice"));
        }
        if dims.is_empty() || dims.len() > 4 {
            return Err(format!(
                "tensor {name:?}: {} dimensions, GGUF allows 1 to 4",
                dims.len()
            ));
        }
        let n: u64 = dims.iter().product();
        if n != values.len() as u64 {
            return Err(format!(
                "tensor {name:?}: dims {dims:?} hold {n} values, got {}",
                values.len()
            ));
        }
        if !dims[0].is_multiple_of(ggml_type.block_len() as u64) {
            return Err(format!(
                "tensor {name:?}: rows of {} values cannot be stored as {} (blocks of {})",
                dims[0],
                ggml_type.name(),
                ggml_type.block_len()
            ));
        }
        let data = quantize(ggml_type, values).map_err(|e| format!("tensor {name:?}: {e}"))?;
        self.tensors.push(PendingTensor {
            name,
            dims,
            ggml_type,
            data,
        });
        Ok(())
    }

    /// The encoded file.
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        out.extend_from_slice(&GGUF_MAGIC);
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.metadata.len() as u64).to_le_bytes());
        for (key, value) in &self.metadata {
            put_string(&mut out, key);
            out.extend_from_slice(&value.value_type().id().to_le_bytes());
            put_value(&mut out, value).map_err(|e| format!("metadata {key:?}: {e}"))?;
        }
        let mut offset = 0u64;
        for t in &self.tensors {
            put_string(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ggml_type.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offset = (offset + t.data.len() as u64).next_multiple_of(self.alignment);
        }
        // The data section starts aligned, and each tensor starts aligned.
        for t in &self.tensors {
            out.resize(
                (out.len() as u64).next_multiple_of(self.alignment) as usize,
                0,
            );
            out.extend_from_slice(&t.data);
        }
        if self.tensors.is_empty() {
            out.resize(
                (out.len() as u64).next_multiple_of(self.alignment) as usize,
                0,
            );
        }
        Ok(out)
    }

    /// Writes the file.
    pub fn write(&self, path: &Path) -> Result<(), LlmError> {
        let bytes = self.to_bytes().map_err(|e| LlmError::format(path, e))?;
        let mut f = std::fs::File::create(path).map_err(|e| LlmError::io(path, e))?;
        f.write_all(&bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| LlmError::io(path, e))
    }
}

/// Writes a Llama checkpoint as GGUF for llama.cpp: every 2-D weight stored
/// as `matrix_type` (`F32`, `F16`, `BF16`, `Q8_0` or `Q4_1`; the quantized
/// types need rows that are a multiple of 32), norms and biases as F32, Q/K
/// rows (and biases) permuted to llama.cpp's interleaved layout, Llama 3's
/// rope scaling as `rope_freqs.weight` (as llama.cpp's converter writes
/// it), and the tokenizer's metadata.
/// The weights are validated against the config first.
pub fn export_gguf(
    path: &Path,
    config: &LlamaConfig,
    weights: &Weights,
    tokenizer: &TextTokenizer,
    matrix_type: GgmlType,
) -> Result<(), LlmError> {
    validate_weights(config, weights, path)?;
    let fail = |m: String| LlmError::format(path, m);
    let mut w = GgufWriter::new();
    let mut metadata = config_to_gguf(config, path)?;
    if matches!(matrix_type, GgmlType::Q8_0 | GgmlType::Q4_1) {
        metadata.push(("general.quantization_version".into(), GgufValue::U32(2)));
    }
    metadata.extend(tokenizer_to_gguf(tokenizer, config.vocab_size, path)?);
    for (key, value) in metadata {
        w.add_metadata(key, value).map_err(fail)?;
    }
    for (name, _) in expected_tensors(config) {
        let t = weights
            .get(&name)
            .ok_or_else(|| LlmError::mismatch(path, format!("missing tensor {name}")))?;
        let gname = gguf_name(&name)
            .ok_or_else(|| fail(format!("tensor {name:?} has no llama.cpp name")))?;
        let dims: Vec<u64> = t.shape.iter().rev().map(|&d| d as u64).collect();
        let ty = if t.shape.len() == 1 {
            GgmlType::F32
        } else {
            matrix_type
        };
        let rows_cols = match t.shape.as_slice() {
            [rows, cols] => Some((*rows, *cols)),
            [rows] => Some((*rows, 1)),
            _ => None,
        };
        let data = match (qk_heads(&name, config), rows_cols) {
            (Some(heads), Some((rows, cols))) => {
                permute_qk_rows(&t.data, rows, cols, heads, QkOrder::ToInterleaved)
                    .map_err(|e| fail(format!("tensor {name:?}: {e}")))?
            }
            _ => t.data.clone(),
        };
        w.add_tensor(gname, dims, ty, &data).map_err(fail)?;
    }
    if let Some(divisors) = frequency_divisors(config) {
        w.add_tensor(
            ROPE_FREQS_TENSOR.to_string(),
            vec![divisors.len() as u64],
            GgmlType::F32,
            &divisors,
        )
        .map_err(fail)?;
    }
    w.write(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::gguf::reader::GgufFile;
    use crate::llm::gguf::value::{GgufArray, GgufValueType};

    #[test]
    fn metadata_of_every_type_round_trips() {
        let values = [
            ("a.u8", GgufValue::U8(7)),
            ("a.i8", GgufValue::I8(-7)),
            ("a.u16", GgufValue::U16(60_000)),
            ("a.i16", GgufValue::I16(-30_000)),
            ("a.u32", GgufValue::U32(4_000_000_000)),
            ("a.i32", GgufValue::I32(-2_000_000_000)),
            ("a.f32", GgufValue::F32(1.5e-5)),
            ("a.bool", GgufValue::Bool(true)),
            ("a.str", GgufValue::String("héllo\n".into())),
            ("a.u64", GgufValue::U64(u64::MAX)),
            ("a.i64", GgufValue::I64(i64::MIN)),
            ("a.f64", GgufValue::F64(-0.125)),
            (
                "a.strs",
                GgufValue::Array(GgufArray::strings(["x", "", "y z"])),
            ),
            ("a.empty", GgufValue::Array(GgufArray::i32s([]))),
            (
                "a.nested",
                GgufValue::Array(GgufArray {
                    elem_type: GgufValueType::Array,
                    values: vec![
                        GgufValue::Array(GgufArray::i32s([1, 2])),
                        GgufValue::Array(GgufArray::i32s([3])),
                    ],
                }),
            ),
        ];
        let mut w = GgufWriter::new().with_alignment(64).unwrap();
        for (k, v) in &values {
            w.add_metadata(*k, v.clone()).unwrap();
        }
        w.add_tensor("t", vec![32, 2], GgmlType::Q8_0, &[0.5; 64])
            .unwrap();
        w.add_tensor("u", vec![3], GgmlType::F32, &[1.0, 2.0, 3.0])
            .unwrap();
        let bytes = w.to_bytes().unwrap();
        // Version 2 has the same little-endian layout as version 3.
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(
            GgufFile::parse(v2, Path::new("v2.gguf")).unwrap().version,
            2
        );
        let f = GgufFile::parse(bytes, Path::new("mem.gguf")).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.alignment, 64);
        for (k, v) in &values {
            assert_eq!(f.get(k), Some(v), "{k}");
        }
        let u = f.tensor_info("u").unwrap();
        assert_eq!(u.offset % 64, 0);
        assert_eq!(f.tensor_f32(u), vec![1.0, 2.0, 3.0]);
        assert_eq!(f.tensor_info("t").unwrap().shape(), vec![2, 32]);
        // Q8_0 keeps 0.5 within the f16 rounding of its scale (0.5 / 127).
        let t = f.tensor_f32(f.tensor_info("t").unwrap());
        assert!(t.iter().all(|v| (v - 0.5).abs() < 1e-4), "{t:?}");
    }

    #[test]
    fn writer_refuses_inconsistent_input() {
        let mut w = GgufWriter::new();
        assert!(
            w.add_tensor("t", vec![3, 2], GgmlType::F32, &[0.0; 5])
                .unwrap_err()
                .contains("hold 6 values")
        );
        assert!(
            w.add_tensor("t", vec![16, 2], GgmlType::Q4_1, &[0.0; 32])
                .unwrap_err()
                .contains("Q4_1")
        );
        w.add_metadata("k", GgufValue::U8(1)).unwrap();
        assert!(
            w.add_metadata("k", GgufValue::U8(2))
                .unwrap_err()
                .contains("twice")
        );
        let bad = GgufArray {
            elem_type: GgufValueType::I32,
            values: vec![GgufValue::U8(1)],
        };
        w.add_metadata("bad", GgufValue::Array(bad)).unwrap();
        assert!(w.to_bytes().unwrap_err().contains("\"bad\""));
        assert!(GgufWriter::new().with_alignment(24).is_err());
    }
}
