//! Which burn backend runs the decoder: a name a user can type, mapped to a
//! runtime [`Device`].

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};

/// A CPU backend of burn the decoder can run on.
///
/// `Device::cpu()` (CubeCL) is deliberately not offered: on this class of
/// machine it stalls compiling kernels during inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// burn-flex, the pure-Rust CPU backend (SIMD + rayon). The default:
    /// decode-shaped matmuls run several times faster than on ndarray.
    #[default]
    Flex,
    /// burn-ndarray (deprecated upstream, kept selectable for comparison).
    NdArray,
}

impl Backend {
    /// Every selectable backend, default first.
    pub const ALL: [Backend; 2] = [Backend::Flex, Backend::NdArray];

    /// The name used in configuration files and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::NdArray => "ndarray",
        }
    }

    /// A burn device on this backend.
    pub fn device(self) -> Device {
        match self {
            Backend::Flex => Device::flex(),
            // NdArray is deprecated upstream in favour of Flex; it stays
            // selectable because the product card names it.
            #[allow(deprecated)]
            Backend::NdArray => Device::ndarray(),
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A backend name that is not one of [`Backend::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown backend {given:?}: expected one of \"flex\", \"ndarray\"")]
pub struct UnknownBackend {
    /// The name that was given.
    pub given: String,
}

impl FromStr for Backend {
    type Err = UnknownBackend;

    /// Parses `flex` or `ndarray` (case-insensitive, surrounding space ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "flex" => Ok(Backend::Flex),
            "ndarray" => Ok(Backend::NdArray),
            _ => Err(UnknownBackend {
                given: s.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_round_trips() {
        for backend in Backend::ALL {
            assert_eq!(backend.name().parse::<Backend>(), Ok(backend));
            assert_eq!(backend.to_string().parse::<Backend>(), Ok(backend));
        }
        assert_eq!(" NdArray ".parse::<Backend>(), Ok(Backend::NdArray));
        assert_eq!("FLEX".parse::<Backend>(), Ok(Backend::Flex));
    }

    #[test]
    fn rejects_unknown_names() {
        let err = "cpu".parse::<Backend>().unwrap_err();
        assert_eq!(err.given, "cpu");
        assert!(err.to_string().contains("flex"));
        assert!("".parse::<Backend>().is_err());
    }

    #[test]
    fn devices_hold_tensors() {
        for backend in Backend::ALL {
            let device = backend.device();
            let t = burn::tensor::Tensor::<1>::from_data([1.0f32, 2.0], &device);
            let v = t.sum().into_data().iter::<f32>().next();
            assert_eq!(v, Some(3.0), "{backend}");
        }
    }
}
