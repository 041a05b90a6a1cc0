//! Hugging Face `model.safetensors` <-> [`Weights`]: F32, F16, BF16 and F64
//! tensors are read as f32; writing stores F32, F16 or BF16.
//!
//! Malformed files (truncated, bad header, offsets out of bounds, sizes that
//! disagree with shapes) give an [`LlmError::Format`] naming the file and,
//! where one is at fault, the tensor.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensorError, SafeTensors, View};
use serde::{Deserialize, Serialize};

use super::error::LlmError;
use super::weights::{HostTensor, Weights};

/// Precision of the tensors in a written safetensors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum StorageDtype {
    /// 32-bit float: exact.
    #[default]
    #[value(name = "f32")]
    F32,
    /// IEEE half: half the size, 11-bit mantissa, range up to 65504.
    #[value(name = "f16")]
    F16,
    /// bfloat16: half the size, f32's range, 8-bit mantissa.
    #[value(name = "bf16")]
    BF16,
}

impl StorageDtype {
    /// The `torch_dtype` string transformers writes to `config.json`.
    pub fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        }
    }

    fn dtype(self) -> Dtype {
        match self {
            Self::F32 => Dtype::F32,
            Self::F16 => Dtype::F16,
            Self::BF16 => Dtype::BF16,
        }
    }

    fn encode(self, values: &[f32]) -> Vec<u8> {
        let mut out = Vec::with_capacity(values.len() * 4);
        match self {
            Self::F32 => values
                .iter()
                .for_each(|v| out.extend_from_slice(&v.to_le_bytes())),
            Self::F16 => values
                .iter()
                .for_each(|v| out.extend_from_slice(&f16::from_f32(*v).to_le_bytes())),
            Self::BF16 => values
                .iter()
                .for_each(|v| out.extend_from_slice(&bf16::from_f32(*v).to_le_bytes())),
        }
        out
    }
}

/// Reads a safetensors file into f32 weights.
pub fn read_safetensors(path: &Path) -> Result<Weights, LlmError> {
    let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
    parse_safetensors(&bytes, path)
}

/// Parses safetensors bytes into f32 weights; `path` names the file in errors.
pub fn parse_safetensors(bytes: &[u8], path: &Path) -> Result<Weights, LlmError> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        let detail = diagnose(bytes).unwrap_or_else(|| e.to_string());
        LlmError::format(path, format!("invalid safetensors file: {detail}"))
    })?;
    let mut weights = Weights::new();
    for (name, view) in st.iter() {
        let data = decode(view.dtype(), view.data())
            .ok_or_else(|| unreadable_dtype(path, name, &view.dtype()))?;
        weights.insert(
            name.to_string(),
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(weights)
}

fn decode(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    Some(match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| {
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                f64::from_le_bytes(a) as f32
            })
            .collect(),
        _ => return None,
    })
}

/// Bytes per element of the dtypes a header may name, for diagnostics.
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" => 1,
        "I16" | "U16" | "F16" | "BF16" => 2,
        "I32" | "U32" | "F32" => 4,
        "I64" | "U64" | "F64" => 8,
        _ => return None,
    })
}

/// Explains why a file failed to parse, naming the tensor at fault; `None`
/// when no specific cause is found (the crate's own message is used then).
fn diagnose(bytes: &[u8]) -> Option<String> {
    let n = match header_len(bytes.get(..8), bytes.len() as u64) {
        Ok(n) => n,
        Err(why) => return Some(why),
    };
    let header = &bytes[8..8 + n as usize];
    check_header(header, bytes.len() as u64 - 8 - n).err()
}

/// Longest header accepted (the safetensors crate's own limit).
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The header length stored in the first 8 bytes of a file `file_len` bytes
/// long (`prefix` is `None` when the file is shorter than 8 bytes), or why
/// the file cannot hold it.
fn header_len(prefix: Option<&[u8]>, file_len: u64) -> Result<u64, String> {
    let Some(len_bytes) = prefix else {
        return Err(format!(
            "the file is {file_len} bytes long, shorter than the 8-byte header length"
        ));
    };
    let mut a = [0u8; 8];
    a.copy_from_slice(len_bytes);
    let n = u64::from_le_bytes(a);
    let rest = file_len - 8;
    if n > rest {
        return Err(format!(
            "the header claims {n} bytes but only {rest} follow the length; truncated file?"
        ));
    }
    if n > MAX_HEADER_BYTES {
        return Err(format!(
            "the header claims {n} bytes, more than the {MAX_HEADER_BYTES} a safetensors header may have"
        ));
    }
    Ok(n)
}

/// One tensor as a safetensors header declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorEntry {
    /// Storage type as the header names it (`F32`, `BF16`, ...).
    pub dtype: String,
    /// Shape, outermost first.
    pub shape: Vec<usize>,
}

/// Checks a header's JSON against a data section of `data_len` bytes:
/// every entry well formed, its shape filling exactly its data bytes, those
/// bytes inside the data section, and the tensors covering the whole data
/// section. Returns the tensors by name.
fn check_header(header: &[u8], data_len: u64) -> Result<BTreeMap<String, TensorEntry>, String> {
    let json: serde_json::Value =
        serde_json::from_slice(header).map_err(|e| format!("the header is not valid JSON: {e}"))?;
    let entries = json
        .as_object()
        .ok_or_else(|| "the header is not a JSON object".to_string())?;
    let mut max_end = 0u64;
    let mut tensors = BTreeMap::new();
    for (name, info) in entries {
        if name == "__metadata__" {
            continue;
        }
        let dtype = info["dtype"].as_str().unwrap_or("?");
        let shape: Option<Vec<u64>> = info["shape"]
            .as_array()
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let offsets: Option<Vec<u64>> = info["data_offsets"]
            .as_array()
            .and_then(|s| s.iter().map(|d| d.as_u64()).collect());
        let (Some(shape), Some([start, end])) = (shape, offsets.as_deref()) else {
            return Err(format!("tensor {name}: malformed header entry {info}"));
        };
        if end > &data_len {
            return Err(format!(
                "tensor {name}: data bytes {start}..{end} lie past the end of the data section \
                 ({data_len} bytes); truncated file?"
            ));
        }
        let need = shape
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype_bytes(dtype)?));
        if start > end || need != Some(end - start) {
            return Err(format!(
                "tensor {name}: shape {shape:?} of {dtype} does not fit its data bytes {start}..{end}"
            ));
        }
        max_end = max_end.max(*end);
        tensors.insert(
            name.clone(),
            TensorEntry {
                dtype: dtype.to_string(),
                shape: shape.iter().map(|&d| d as usize).collect(),
            },
        );
    }
    if max_end != data_len {
        return Err(format!(
            "the tensors cover {max_end} bytes but the data section has {data_len}"
        ));
    }
    Ok(tensors)
}

/// Reads only the header of a safetensors file (not its tensor data) and
/// checks it as [`read_safetensors`] would: the header within the file,
/// every tensor's data bytes inside the file's data section and matching
/// its shape, and every tensor stored in a type this crate reads.
pub fn read_safetensors_header(path: &Path) -> Result<BTreeMap<String, TensorEntry>, LlmError> {
    let mut file = File::open(path).map_err(|e| LlmError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| LlmError::io(path, e))?.len();
    let invalid = |why: String| LlmError::format(path, format!("invalid safetensors file: {why}"));
    let mut len_bytes = [0u8; 8];
    if file_len >= 8 {
        file.read_exact(&mut len_bytes)
            .map_err(|e| LlmError::io(path, e))?;
    }
    let n = header_len((file_len >= 8).then_some(&len_bytes[..]), file_len).map_err(invalid)?;
    let mut header = vec![0u8; n as usize];
    file.read_exact(&mut header)
        .map_err(|e| LlmError::io(path, e))?;
    let tensors = check_header(&header, file_len - 8 - n).map_err(invalid)?;
    if let Some((name, t)) = tensors
        .iter()
        .find(|(_, t)| !matches!(t.dtype.as_str(), "F32" | "F16" | "BF16" | "F64"))
    {
        return Err(unreadable_dtype(path, name, &t.dtype));
    }
    Ok(tensors)
}

/// The error for a tensor stored in a type [`decode`] does not read.
fn unreadable_dtype(path: &Path, name: &str, dtype: &dyn std::fmt::Display) -> LlmError {
    LlmError::format(
        path,
        format!(
            "tensor {name} is stored as {dtype}; only F32, F16, BF16 and F64 weights can be read"
        ),
    )
}

struct Encoded {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Writes weights as a safetensors file with tensors stored as `dtype` and
/// the `{"format": "pt"}` metadata transformers expects.
pub fn write_safetensors(
    path: &Path,
    weights: &Weights,
    dtype: StorageDtype,
) -> Result<(), LlmError> {
    let mut encoded = Vec::with_capacity(weights.len());
    for (name, t) in weights {
        let n = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if n != Some(t.data.len()) {
            return Err(LlmError::format(
                path,
                format!(
                    "tensor {name}: shape {:?} does not match its {} values",
                    t.shape,
                    t.data.len()
                ),
            ));
        }
        encoded.push((
            name.as_str(),
            Encoded {
                dtype: dtype.dtype(),
                shape: t.shape.clone(),
                data: dtype.encode(&t.data),
            },
        ));
    }
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(encoded.iter().map(|(n, e)| (*n, e)), Some(metadata), path)
        .map_err(|e| match e {
            SafeTensorError::IoError(io) => LlmError::io(path, io),
            other => LlmError::format(path, format!("cannot write safetensors: {other}")),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Weights {
        let mut w = Weights::new();
        w.insert(
            "a.weight".into(),
            HostTensor {
                shape: vec![2, 3],
                data: vec![0.5, -1.25, 3.0, 1e-3, 65000.0, -0.0],
            },
        );
        w.insert(
            "b".into(),
            HostTensor {
                shape: vec![4],
                data: vec![1.0, 2.0, 3.0, 4.0],
            },
        );
        w
    }

    #[test]
    fn round_trips_in_every_storage_dtype() {
        let dir = tempfile::tempdir().unwrap();
        for dtype in [StorageDtype::F32, StorageDtype::F16, StorageDtype::BF16] {
            let p = dir.path().join(format!("{dtype:?}.safetensors"));
            write_safetensors(&p, &sample(), dtype).unwrap();
            let back = read_safetensors(&p).unwrap();
            assert_eq!(back.len(), 2);
            for (name, t) in sample() {
                let b = &back[&name];
                assert_eq!(b.shape, t.shape);
                for (x, y) in t.data.iter().zip(&b.data) {
                    let tol = match dtype {
                        StorageDtype::F32 => 0.0,
                        StorageDtype::F16 => x.abs() / 2048.0,
                        StorageDtype::BF16 => x.abs() / 256.0,
                    };
                    assert!((x - y).abs() <= tol, "{dtype:?} {name}: {x} vs {y}");
                }
            }
        }
    }

    #[test]
    fn damaged_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.safetensors");
        write_safetensors(&p, &sample(), StorageDtype::F32).unwrap();
        let good = std::fs::read(&p).unwrap();

        // Truncated inside the data of the last tensor (sorted by name: a.weight, b).
        let cut = &good[..good.len() - 3];
        let msg = parse_safetensors(cut, &p).unwrap_err().to_string();
        assert!(msg.contains("m.safetensors"), "{msg}");
        assert!(
            msg.contains("tensor b: data bytes 24..40 lie past the end"),
            "{msg}"
        );

        let msg = parse_safetensors(&good[..5], &p).unwrap_err().to_string();
        assert!(
            msg.contains("shorter than the 8-byte header length"),
            "{msg}"
        );

        let msg = parse_safetensors(&good[..20], &p).unwrap_err().to_string();
        assert!(msg.contains("truncated file?"), "{msg}");

        let mut garbled = good.clone();
        garbled[8] = b'[';
        let msg = parse_safetensors(&garbled, &p).unwrap_err().to_string();
        assert!(msg.contains("not valid JSON"), "{msg}");

        // A header whose shape disagrees with its offsets.
        let header = br#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#;
        let mut bad = (header.len() as u64).to_le_bytes().to_vec();
        bad.extend_from_slice(header);
        bad.extend_from_slice(&[0u8; 8]);
        let msg = parse_safetensors(&bad, &p).unwrap_err().to_string();
        assert!(
            msg.contains("tensor x: shape [3] of F32 does not fit its data bytes 0..8"),
            "{msg}"
        );

        // An integer tensor.
        let header = br#"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#;
        let mut ints = (header.len() as u64).to_le_bytes().to_vec();
        ints.extend_from_slice(header);
        ints.extend_from_slice(&[0u8; 8]);
        let msg = parse_safetensors(&ints, &p).unwrap_err().to_string();
        assert!(msg.contains("tensor ids is stored as I64"), "{msg}");
    }

    #[test]
    fn inconsistent_weights_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = sample();
        w.get_mut("b").unwrap().data.push(5.0);
        let err = write_safetensors(&dir.path().join("x"), &w, StorageDtype::F32).unwrap_err();
        assert!(
            err.to_string()
                .contains("tensor b: shape [4] does not match its 5 values"),
            "{err}"
        );
        let err = write_safetensors(
            &dir.path().join("no/such/dir/x"),
            &sample(),
            StorageDtype::F32,
        )
        .unwrap_err();
        assert!(matches!(err, LlmError::Io { .. }), "{err}");
    }
}
