//! GGUF (versions 2 and 3) parsing: header, metadata, tensor infos and the
//! aligned data section. Every length read from the file is checked against
//! the bytes that remain before anything is allocated for it.
//!
//! Layout (all little-endian): `"GGUF"`, `u32` version, `u64` tensor count,
//! `u64` metadata count; metadata entries (`string` key, `u32` type, value);
//! tensor infos (`string` name, `u32` n_dims, `n_dims x u64` dims innermost
//! first, `u32` ggml type, `u64` offset into the data section); padding to
//! `general.alignment` (default 32); the data section.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::quant::{GgmlType, dequantize, ggml_type_name};
use super::value::{GgufArray, GgufValue, GgufValueType};
use crate::llm::error::LlmError;

/// The four bytes every GGUF file starts with.
pub const GGUF_MAGIC: [u8; 4] = *b"GGUF";
/// Data-section alignment when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most four dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays of arrays deeper than this are refused (no real file nests at all).
const MAX_ARRAY_DEPTH: usize = 4;

/// One tensor's entry in the GGUF header, already checked against the file.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    /// llama.cpp name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions innermost first (ggml `ne`): a Linear `[out, in]` is `[in, out]`.
    pub dims: Vec<u64>,
    /// Storage type.
    pub ggml_type: GgmlType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    /// Number of values.
    pub n_elements: u64,
    /// Number of bytes of data.
    pub byte_len: u64,
}

impl GgufTensorInfo {
    /// Shape outermost first (Hugging Face / PyTorch order).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A parsed GGUF file held in memory.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    bytes: Vec<u8>,
    data_start: usize,
    /// Format version (2 or 3).
    pub version: u32,
    /// Data-section alignment.
    pub alignment: u64,
    /// Metadata by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// Tensor infos in file order.
    pub tensors: Vec<GgufTensorInfo>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn err(&self, message: String) -> LlmError {
        LlmError::format(self.path, message)
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &dyn Fn() -> String) -> Result<&'a [u8], LlmError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.err(format!(
                "truncated file: {} needs {n} bytes at offset {} but only {} remain",
                what(),
                self.pos,
                self.remaining()
            ))),
        }
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], LlmError> {
        let s = self.take(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, LlmError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, LlmError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A length-prefixed UTF-8 string; the length is checked against the file first.
    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, LlmError> {
        let len = self.u64(&|| format!("length of {}", what()))?;
        if len > self.remaining() as u64 {
            return Err(self.err(format!(
                "{} claims a length of {len} bytes at offset {} but only {} bytes remain in the file",
                what(),
                self.pos,
                self.remaining()
            )));
        }
        let raw = self.take(len as usize, what)?;
        String::from_utf8(raw.to_vec())
            .map_err(|e| self.err(format!("{} is not valid UTF-8: {e}", what())))
    }

    fn value(
        &mut self,
        ty: GgufValueType,
        what: &dyn Fn() -> String,
        depth: usize,
    ) -> Result<GgufValue, LlmError> {
        Ok(match ty {
            GgufValueType::U8 => GgufValue::U8(self.array::<1>(what)?[0]),
            GgufValueType::I8 => GgufValue::I8(i8::from_le_bytes(self.array(what)?)),
            GgufValueType::U16 => GgufValue::U16(u16::from_le_bytes(self.array(what)?)),
            GgufValueType::I16 => GgufValue::I16(i16::from_le_bytes(self.array(what)?)),
            GgufValueType::U32 => GgufValue::U32(self.u32(what)?),
            GgufValueType::I32 => GgufValue::I32(i32::from_le_bytes(self.array(what)?)),
            GgufValueType::F32 => GgufValue::F32(f32::from_le_bytes(self.array(what)?)),
            GgufValueType::U64 => GgufValue::U64(self.u64(what)?),
            GgufValueType::I64 => GgufValue::I64(i64::from_le_bytes(self.array(what)?)),
            GgufValueType::F64 => GgufValue::F64(f64::from_le_bytes(self.array(what)?)),
            GgufValueType::Bool => match self.array::<1>(what)?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                b => return Err(self.err(format!("{}: bool byte is {b}, expected 0 or 1", what()))),
            },
            GgufValueType::String => GgufValue::String(self.string(what)?),
            GgufValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.err(format!(
                        "{}: arrays nested deeper than {MAX_ARRAY_DEPTH}",
                        what()
                    )));
                }
                let id = self.u32(&|| format!("element type of {}", what()))?;
                let elem_type = GgufValueType::from_id(id).ok_or_else(|| {
                    self.err(format!("{}: unknown array element type {id}", what()))
                })?;
                let count = self.u64(&|| format!("length of {}", what()))?;
                let max = self.remaining() / elem_type.min_encoded_len();
                if count > max as u64 {
                    return Err(self.err(format!(
                        "{} claims {count} elements of type {elem_type} but only {} bytes remain in the file",
                        what(),
                        self.remaining()
                    )));
                }
                let mut values = Vec::with_capacity(count as usize);
                for i in 0..count {
                    values.push(self.value(
                        elem_type,
                        &|| format!("{}[{i}]", what()),
                        depth + 1,
                    )?);
                }
                GgufValue::Array(GgufArray { elem_type, values })
            }
        })
    }
}

/// A tensor's header as stored: name, dimensions, type id, data offset.
type TensorHeader = (String, Vec<u64>, u32, u64);

/// Where the tensors' data lies: its length, the file's, and the
/// alignment of every tensor's offset.
struct DataSection {
    len: u64,
    file_len: u64,
    alignment: u64,
}

impl Cursor<'_> {
    /// The magic, version and the tensor and metadata counts, checked
    /// against what the remaining bytes can hold.
    fn header(&mut self) -> Result<(u32, u64, u64), LlmError> {
        let magic = self.array::<4>(&|| "the GGUF magic".to_string())?;
        if magic != GGUF_MAGIC {
            return Err(self.err(format!(
                "not a GGUF file: starts with {magic:02x?}, expected \"GGUF\""
            )));
        }
        let version = self.u32(&|| "the GGUF version".to_string())?;
        if !(2..=3).contains(&version) {
            return Err(self.err(format!(
                "GGUF version {version} is not supported (only 2 and 3)"
            )));
        }
        let tensor_count = self.u64(&|| "the tensor count".to_string())?;
        let kv_count = self.u64(&|| "the metadata count".to_string())?;
        // Smallest encodings: a key (8) + type (4) + 1 byte; a tensor info
        // name (8) + n_dims (4) + type (4) + offset (8).
        let budget = self.remaining() as u64;
        if kv_count > budget / 13 || tensor_count > budget / 24 {
            return Err(self.err(format!(
                "header claims {kv_count} metadata entries and {tensor_count} tensors, \
                 more than the {budget} remaining bytes can hold"
            )));
        }
        Ok((version, tensor_count, kv_count))
    }

    /// `kv_count` metadata entries; a key given twice is an error.
    fn metadata(&mut self, kv_count: u64) -> Result<BTreeMap<String, GgufValue>, LlmError> {
        let mut metadata = BTreeMap::new();
        for i in 0..kv_count {
            let key = self.string(&|| format!("metadata key #{i}"))?;
            let id = self.u32(&|| format!("type of metadata {key:?}"))?;
            let ty = GgufValueType::from_id(id)
                .ok_or_else(|| self.err(format!("metadata {key:?} has unknown value type {id}")))?;
            let value = self.value(ty, &|| format!("metadata {key:?}"), 0)?;
            if metadata.insert(key.clone(), value).is_some() {
                return Err(self.err(format!("metadata key {key:?} appears twice")));
            }
        }
        Ok(metadata)
    }

    /// Tensor `i`'s header, its dimensions checked.
    fn tensor_header(&mut self, i: u64) -> Result<TensorHeader, LlmError> {
        let name = self.string(&|| format!("name of tensor #{i}"))?;
        let n_dims = self.u32(&|| format!("dimension count of tensor {name:?}"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(self.err(format!(
                "tensor {name:?} has {n_dims} dimensions; GGUF tensors have 1 to {MAX_DIMS}"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for d in 0..n_dims {
            dims.push(self.u64(&|| format!("dimension {d} of tensor {name:?}"))?);
        }
        // A zero dimension makes the element count 0 whatever the others
        // claim, and a row count of 2^40 then passes every size check
        // (libFuzzer found the permutation of Q/K rows allocating it).
        if dims.contains(&0) {
            return Err(self.err(format!(
                "tensor {name:?} has a dimension of 0 (dimensions {dims:?})"
            )));
        }
        let type_id = self.u32(&|| format!("type of tensor {name:?}"))?;
        let offset = self.u64(&|| format!("data offset of tensor {name:?}"))?;
        Ok((name, dims, type_id, offset))
    }

    /// A tensor's info from its header: its type supported, its size
    /// plausible, its data aligned and inside the data section.
    fn tensor_info(
        &self,
        (name, dims, type_id, offset): TensorHeader,
        data: &DataSection,
    ) -> Result<GgufTensorInfo, LlmError> {
        let (data_len, file_len, alignment) = (data.len, data.file_len, data.alignment);
        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| {
            let supported: Vec<_> = GgmlType::SUPPORTED.iter().map(|t| t.name()).collect();
            let known = ggml_type_name(type_id)
                .map(|n| format!("{n} (type id {type_id})"))
                .unwrap_or_else(|| format!("unknown quantization type id {type_id}"));
            self.err(format!(
                "tensor {name:?} is stored as {known}, which this reader cannot dequantize \
                 (supported: {})",
                supported.join(", ")
            ))
        })?;
        let n_elements = dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
            .filter(|&n| n <= data_len.saturating_mul(8))
            .ok_or_else(|| {
                self.err(format!(
                    "tensor {name:?} has absurd dimensions {dims:?}: more elements than a \
                     {file_len}-byte file can hold"
                ))
            })?;
        let first = dims.first().copied().unwrap_or(1);
        let byte_len = ggml_type
            .byte_len(n_elements)
            .filter(|_| first.is_multiple_of(ggml_type.block_len() as u64))
            .ok_or_else(|| {
                self.err(format!(
                    "tensor {name:?}: rows of {first} values are not a whole number of {} blocks of {}",
                    ggml_type.name(),
                    ggml_type.block_len()
                ))
            })?;
        if !offset.is_multiple_of(alignment) {
            return Err(self.err(format!(
                "tensor {name:?}: data offset {offset} is not a multiple of the alignment {alignment}"
            )));
        }
        let end = offset.checked_add(byte_len).filter(|&e| e <= data_len);
        if end.is_none() {
            return Err(self.err(format!(
                "tensor {name:?}: data bytes {offset}..{} of the data section lie past the end \
                 of the file (the data section has {data_len} bytes); truncated file?",
                offset.saturating_add(byte_len)
            )));
        }
        Ok(GgufTensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            n_elements,
            byte_len,
        })
    }
}

impl GgufFile {
    /// Reads and parses a GGUF file.
    pub fn read(path: &Path) -> Result<Self, LlmError> {
        let bytes = std::fs::read(path).map_err(|e| LlmError::io(path, e))?;
        Self::parse(bytes, path)
    }

    /// Parses GGUF bytes; `path` is only used in error messages.
    pub fn parse(bytes: Vec<u8>, path: &Path) -> Result<Self, LlmError> {
        let mut c = Cursor {
            bytes: &bytes,
            pos: 0,
            path,
        };
        let (version, tensor_count, kv_count) = c.header()?;
        let metadata = c.metadata(kv_count)?;
        let alignment = match metadata.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(v) => match v.as_i128() {
                Some(a) if a > 0 && a <= 1 << 20 && (a as u64).is_power_of_two() => a as u64,
                _ => {
                    return Err(c.err(format!(
                        "general.alignment is {}, expected a power of two",
                        v.describe()
                    )));
                }
            },
        };
        let mut infos = Vec::with_capacity(tensor_count as usize);
        for i in 0..tensor_count {
            infos.push(c.tensor_header(i)?);
        }
        let data_start = (c.pos as u64).next_multiple_of(alignment);
        let file_len = bytes.len() as u64;
        let data = DataSection {
            // A file without tensors may end right after its header; with
            // tensors, a missing data section fails the bounds check.
            len: file_len.saturating_sub(data_start),
            file_len,
            alignment,
        };
        let mut tensors = Vec::with_capacity(infos.len());
        let mut seen = std::collections::BTreeSet::new();
        for info in infos {
            if !seen.insert(info.0.clone()) {
                return Err(c.err(format!("tensor {:?} appears twice", info.0)));
            }
            tensors.push(c.tensor_info(info, &data)?);
        }
        Ok(Self {
            path: path.to_path_buf(),
            data_start: data_start.min(file_len) as usize,
            bytes,
            version,
            alignment,
            metadata,
            tensors,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The whole file's bytes (e.g. to fingerprint it).
    pub fn file_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The info of a tensor by llama.cpp name.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The raw stored bytes of a tensor (bounds were checked when parsing).
    pub fn tensor_bytes(&self, info: &GgufTensorInfo) -> &[u8] {
        let start = self.data_start + info.offset as usize;
        &self.bytes[start..start + info.byte_len as usize]
    }

    /// A tensor's values as f32, in ggml order (innermost dimension fastest,
    /// which is row-major for the reversed, Hugging Face shape).
    pub fn tensor_f32(&self, info: &GgufTensorInfo) -> Vec<f32> {
        dequantize(info.ggml_type, self.tensor_bytes(info))
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    fn wrong_type(&self, key: &str, want: &str, got: &GgufValue) -> LlmError {
        LlmError::format(
            &self.path,
            format!(
                "metadata {key:?} should be {want} but is {}",
                got.describe()
            ),
        )
    }

    fn missing(&self, key: &str) -> LlmError {
        LlmError::format(&self.path, format!("metadata {key:?} is missing"))
    }

    /// An optional non-negative integer of any stored width.
    pub fn opt_usize(&self, key: &str) -> Result<Option<usize>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_i128() {
                Some(n) if n >= 0 && n <= usize::MAX as i128 => Ok(Some(n as usize)),
                _ => Err(self.wrong_type(key, "a non-negative integer", v)),
            },
        }
    }

    /// A required non-negative integer.
    pub fn req_usize(&self, key: &str) -> Result<usize, LlmError> {
        self.opt_usize(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional number (integer or float).
    pub fn opt_f64(&self, key: &str) -> Result<Option<f64>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            // f32 values are widened through their shortest decimal form, so
            // 1e-5 stored as f32 reads back as 1e-5, not 9.999999747378752e-6.
            Some(GgufValue::F32(f)) => Ok(format!("{f}").parse().ok()),
            Some(v) => v
                .as_f64()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a number", v)),
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_str()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a string", v)),
        }
    }

    /// A required string.
    pub fn req_str(&self, key: &str) -> Result<&str, LlmError> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional bool.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_bool()
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "a bool", v)),
        }
    }

    /// An optional array of strings.
    pub fn opt_str_array(&self, key: &str) -> Result<Option<Vec<&str>>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_array()
                .and_then(|a| {
                    a.values
                        .iter()
                        .map(GgufValue::as_str)
                        .collect::<Option<Vec<_>>>()
                })
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "an array of strings", v)),
        }
    }

    /// An optional array of integers.
    pub fn opt_int_array(&self, key: &str) -> Result<Option<Vec<i128>>, LlmError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_array()
                .and_then(|a| {
                    a.values
                        .iter()
                        .map(GgufValue::as_i128)
                        .collect::<Option<Vec<_>>>()
                })
                .map(Some)
                .ok_or_else(|| self.wrong_type(key, "an array of integers", v)),
        }
    }
}
