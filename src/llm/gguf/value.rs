//! GGUF metadata values: the thirteen value types of the format and typed
//! accessors that accept whichever integer width a writer chose.

use std::fmt;

/// The type tag of a GGUF metadata value (the `u32` stored before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufValueType {
    /// `uint8`.
    U8,
    /// `int8`.
    I8,
    /// `uint16`.
    U16,
    /// `int16`.
    I16,
    /// `uint32`.
    U32,
    /// `int32`.
    I32,
    /// `float32`.
    F32,
    /// `bool` (one byte, 0 or 1).
    Bool,
    /// Length-prefixed UTF-8 string.
    String,
    /// Typed array: element type, count, elements.
    Array,
    /// `uint64`.
    U64,
    /// `int64`.
    I64,
    /// `float64`.
    F64,
}

impl GgufValueType {
    /// The type for a tag read from a file, `None` for an unknown tag.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::U8,
            1 => Self::I8,
            2 => Self::U16,
            3 => Self::I16,
            4 => Self::U32,
            5 => Self::I32,
            6 => Self::F32,
            7 => Self::Bool,
            8 => Self::String,
            9 => Self::Array,
            10 => Self::U64,
            11 => Self::I64,
            12 => Self::F64,
            _ => return None,
        })
    }

    /// The tag written to a file.
    pub fn id(self) -> u32 {
        match self {
            Self::U8 => 0,
            Self::I8 => 1,
            Self::U16 => 2,
            Self::I16 => 3,
            Self::U32 => 4,
            Self::I32 => 5,
            Self::F32 => 6,
            Self::Bool => 7,
            Self::String => 8,
            Self::Array => 9,
            Self::U64 => 10,
            Self::I64 => 11,
            Self::F64 => 12,
        }
    }

    /// Smallest number of bytes one value of this type occupies in a file
    /// (used to refuse absurd array lengths before allocating).
    pub fn min_encoded_len(self) -> usize {
        match self {
            Self::U8 | Self::I8 | Self::Bool => 1,
            Self::U16 | Self::I16 => 2,
            Self::U32 | Self::I32 | Self::F32 => 4,
            Self::U64 | Self::I64 | Self::F64 | Self::String => 8,
            // element type + count
            Self::Array => 12,
        }
    }
}

impl fmt::Display for GgufValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::U8 => "uint8",
            Self::I8 => "int8",
            Self::U16 => "uint16",
            Self::I16 => "int16",
            Self::U32 => "uint32",
            Self::I32 => "int32",
            Self::F32 => "float32",
            Self::Bool => "bool",
            Self::String => "string",
            Self::Array => "array",
            Self::U64 => "uint64",
            Self::I64 => "int64",
            Self::F64 => "float64",
        };
        f.write_str(name)
    }
}

/// One GGUF metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// `uint8`.
    U8(u8),
    /// `int8`.
    I8(i8),
    /// `uint16`.
    U16(u16),
    /// `int16`.
    I16(i16),
    /// `uint32`.
    U32(u32),
    /// `int32`.
    I32(i32),
    /// `float32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// UTF-8 string.
    String(String),
    /// Homogeneous array.
    Array(GgufArray),
    /// `uint64`.
    U64(u64),
    /// `int64`.
    I64(i64),
    /// `float64`.
    F64(f64),
}

/// A GGUF array: every element has `elem_type` (arrays of arrays are allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct GgufArray {
    /// Type of every element (kept for empty arrays).
    pub elem_type: GgufValueType,
    /// The elements.
    pub values: Vec<GgufValue>,
}

impl GgufArray {
    /// An array of strings.
    pub fn strings<S: Into<String>>(items: impl IntoIterator<Item = S>) -> Self {
        Self {
            elem_type: GgufValueType::String,
            values: items
                .into_iter()
                .map(|s| GgufValue::String(s.into()))
                .collect(),
        }
    }

    /// An array of `uint32`.
    pub fn u32s(items: impl IntoIterator<Item = u32>) -> Self {
        Self {
            elem_type: GgufValueType::U32,
            values: items.into_iter().map(GgufValue::U32).collect(),
        }
    }

    /// An array of `int32`.
    pub fn i32s(items: impl IntoIterator<Item = i32>) -> Self {
        Self {
            elem_type: GgufValueType::I32,
            values: items.into_iter().map(GgufValue::I32).collect(),
        }
    }
}

impl GgufValue {
    /// The type tag of this value.
    pub fn value_type(&self) -> GgufValueType {
        match self {
            Self::U8(_) => GgufValueType::U8,
            Self::I8(_) => GgufValueType::I8,
            Self::U16(_) => GgufValueType::U16,
            Self::I16(_) => GgufValueType::I16,
            Self::U32(_) => GgufValueType::U32,
            Self::I32(_) => GgufValueType::I32,
            Self::F32(_) => GgufValueType::F32,
            Self::Bool(_) => GgufValueType::Bool,
            Self::String(_) => GgufValueType::String,
            Self::Array(_) => GgufValueType::Array,
            Self::U64(_) => GgufValueType::U64,
            Self::I64(_) => GgufValueType::I64,
            Self::F64(_) => GgufValueType::F64,
        }
    }

    /// The value as an integer of any width, `None` for non-integers.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            Self::U8(v) => v.into(),
            Self::I8(v) => v.into(),
            Self::U16(v) => v.into(),
            Self::I16(v) => v.into(),
            Self::U32(v) => v.into(),
            Self::I32(v) => v.into(),
            Self::U64(v) => v.into(),
            Self::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// The value as a float (integers and floats), `None` otherwise.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            _ => self.as_i128().map(|v| v as f64),
        }
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a bool.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Self::Bool(b) => Some(b),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&GgufArray> {
        match self {
            Self::Array(a) => Some(a),
            _ => None,
        }
    }

    /// A short description for error messages (`uint32 30`, `array of 49152 string`).
    pub fn describe(&self) -> String {
        match self {
            Self::String(s) if s.len() > 40 => format!("string of {} bytes", s.len()),
            Self::String(s) => format!("string {s:?}"),
            Self::Array(a) => format!("array of {} {}", a.values.len(), a.elem_type),
            Self::Bool(b) => format!("bool {b}"),
            other => {
                let num = other
                    .as_i128()
                    .map(|v| v.to_string())
                    .or_else(|| other.as_f64().map(|v| v.to_string()))
                    .unwrap_or_default();
                format!("{} {num}", other.value_type())
            }
        }
    }
}
