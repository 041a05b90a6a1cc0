//! Per-layer key/value cache for incremental decoding.
//!
//! Keys and values of every layer live in preallocated tensors of shape
//! `[rows, kv_heads, capacity, head_dim]`; a forward over `s` new tokens
//! writes columns `len..len + s` in place (burn reuses a uniquely owned
//! buffer) and attends over columns `0..len + s`. The prefix is never
//! recomputed. Rows may carry padding: row `r`'s `pads[r]` columns from
//! column `pad_start` on are masked out of attention, and its positions
//! skip them. With `pad_start = 0` that is left padding; a cache forked
//! after a shared prompt prefix ([`KvCache::fork`]) pads each row between
//! the prefix and its own suffix.

use burn::tensor::{Device, Int, Tensor, TensorData};

use super::config::LlamaConfig;
use super::error::LlmError;

/// Keys and values of one layer, `[rows, kv_heads, capacity, head_dim]`.
#[derive(Debug, Clone)]
struct LayerKv {
    keys: Tensor<4>,
    values: Tensor<4>,
}

/// The key/value cache of a whole decoder for a batch of rows.
#[derive(Debug, Clone)]
pub struct KvCache {
    /// One entry per layer; `None` only transiently while a layer writes.
    layers: Vec<Option<LayerKv>>,
    pads: Vec<usize>,
    pad_start: usize,
    len: usize,
    capacity: usize,
    kv_heads: usize,
    head_dim: usize,
    device: Device,
}

impl KvCache {
    /// An empty cache for `pads.len()` rows, room for `capacity` columns
    /// (it grows if a forward needs more). `pads[r]` is the number of leading
    /// padding columns row `r` will be given (left padding).
    pub fn new(config: &LlamaConfig, pads: Vec<usize>, capacity: usize, device: &Device) -> Self {
        let rows = pads.len();
        let (kv_heads, head_dim) = (config.kv_heads(), config.head_dim());
        let layers = (0..config.num_hidden_layers)
            .map(|_| {
                Some(LayerKv {
                    keys: Tensor::zeros([rows, kv_heads, capacity, head_dim], device),
                    values: Tensor::zeros([rows, kv_heads, capacity, head_dim], device),
                })
            })
            .collect();
        Self {
            layers,
            pads,
            pad_start: 0,
            len: 0,
            capacity,
            kv_heads,
            head_dim,
            device: device.clone(),
        }
    }

    /// Number of rows (sequences).
    pub fn rows(&self) -> usize {
        self.pads.len()
    }

    /// Number of filled columns (the same for every row, padding included).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no column has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Columns allocated per row.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Padding columns of each row (starting at [`KvCache::pad_start`]).
    pub fn pads(&self) -> &[usize] {
        &self.pads
    }

    /// The column where each row's padding starts: 0 for left padding, the
    /// shared prefix's length after [`KvCache::fork`].
    pub fn pad_start(&self) -> usize {
        self.pad_start
    }

    /// Positions of the next `cols` columns of each row, row-major: a
    /// column's index minus the row's padding before it.
    pub fn next_positions(&self, cols: usize) -> Vec<usize> {
        let (start, past) = (self.pad_start, self.len);
        self.pads
            .iter()
            .flat_map(|&pad| {
                (past..past + cols).map(move |c| if c < start { c } else { c.saturating_sub(pad) })
            })
            .collect()
    }

    /// Turns a one-row cache holding a shared prompt prefix into one row
    /// per entry of `pads`, each starting with a copy of the prefix and
    /// then `pads[r]` padding columns (the suffixes are left-padded after
    /// the prefix). Fails unless the cache has exactly one unpadded row.
    pub fn fork(&mut self, pads: Vec<usize>) -> Result<(), LlmError> {
        if self.rows() != 1 || self.pads[0] != 0 {
            return Err(LlmError::Generation(format!(
                "only a one-row unpadded kv cache can be forked (this one has {} rows)",
                self.rows()
            )));
        }
        if pads.is_empty() {
            return Err(LlmError::Generation(
                "forking a kv cache into no rows".into(),
            ));
        }
        self.select_rows(&vec![0; pads.len()])?;
        self.pads = pads;
        self.pad_start = self.len;
        Ok(())
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// Keeps the rows listed in `rows`, in that order (a row may be listed
    /// more than once to fork it, e.g. one prompt scored against several
    /// continuations). With left padding, leading columns that are padding
    /// in every kept row are dropped, so finished or long-padded sequences
    /// stop costing attention work.
    pub fn select_rows(&mut self, rows: &[usize]) -> Result<(), LlmError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.rows()) {
            return Err(LlmError::Generation(format!(
                "kv cache has {} rows, cannot select row {bad}",
                self.rows()
            )));
        }
        let pads: Vec<usize> = rows.iter().map(|&r| self.pads[r]).collect();
        let trim = if self.pad_start == 0 {
            pads.iter().copied().min().unwrap_or(0).min(self.len)
        } else {
            0
        };
        let index_data: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
        let index =
            Tensor::<1, Int>::from_data(TensorData::new(index_data, [rows.len()]), &self.device);
        let keep = self.capacity - trim;
        for layer in self.layers.iter_mut() {
            let Some(kv) = layer.take() else {
                return Err(LlmError::Generation("kv cache layer missing".into()));
            };
            let mut keys = kv.keys.select(0, index.clone());
            let mut values = kv.values.select(0, index.clone());
            if trim > 0 {
                keys = keys.narrow(2, trim, keep);
                values = values.narrow(2, trim, keep);
            }
            *layer = Some(LayerKv { keys, values });
        }
        self.pads = pads.into_iter().map(|p| p - trim).collect();
        self.len -= trim;
        self.capacity = keep;
        Ok(())
    }

    /// Makes room for `extra` more columns, growing the buffers (doubling)
    /// when needed.
    pub(crate) fn reserve(&mut self, extra: usize) -> Result<(), LlmError> {
        let needed = self.len + extra;
        if needed <= self.capacity {
            return Ok(());
        }
        self.grow_to(needed.max(self.capacity * 2))
    }

    /// Grows the buffers to exactly `new_capacity` columns (nothing when
    /// they hold that many already), keeping what is filled.
    pub(crate) fn grow_to(&mut self, new_capacity: usize) -> Result<(), LlmError> {
        if new_capacity <= self.capacity {
            return Ok(());
        }
        let rows = self.rows();
        let shape = [rows, self.kv_heads, new_capacity, self.head_dim];
        let filled = [0..rows, 0..self.kv_heads, 0..self.len, 0..self.head_dim];
        for layer in self.layers.iter_mut() {
            let Some(kv) = layer.take() else {
                return Err(LlmError::Generation("kv cache layer missing".into()));
            };
            let grow = |old: Tensor<4>| {
                Tensor::zeros(shape, &self.device)
                    .slice_assign(filled.clone(), old.slice(filled.clone()))
            };
            *layer = Some(LayerKv {
                keys: grow(kv.keys),
                values: grow(kv.values),
            });
        }
        self.capacity = new_capacity;
        Ok(())
    }

    /// Writes `keys`/`values` (`[rows, kv_heads, s, head_dim]`) of `layer` at
    /// columns `len..len + s` and returns the cached keys and values of
    /// columns `0..len + s`. Call [`KvCache::reserve`] first and
    /// [`KvCache::advance`] once every layer has written.
    pub(crate) fn append(
        &mut self,
        layer: usize,
        keys: Tensor<4>,
        values: Tensor<4>,
    ) -> Result<(Tensor<4>, Tensor<4>), LlmError> {
        let [rows, heads, s, dim] = keys.dims();
        if rows != self.rows()
            || heads != self.kv_heads
            || dim != self.head_dim
            || self.len + s > self.capacity
        {
            return Err(LlmError::Generation(format!(
                "kv cache write of shape {:?} does not fit rows {} x kv heads {} x head dim {} \
                 with {} of {} columns used",
                keys.dims(),
                self.rows(),
                self.kv_heads,
                self.head_dim,
                self.len,
                self.capacity
            )));
        }
        let slot = self
            .layers
            .get_mut(layer)
            .ok_or_else(|| LlmError::Generation(format!("kv cache has no layer {layer}")))?;
        let Some(kv) = slot.take() else {
            return Err(LlmError::Generation("kv cache layer missing".into()));
        };
        let end = self.len + s;
        let target = [0..rows, 0..heads, self.len..end, 0..dim];
        // `kv` is moved in, so the buffers are uniquely owned and written in place.
        let all_keys = kv.keys.slice_assign(target.clone(), keys);
        let all_values = kv.values.slice_assign(target, values);
        let used = [0..rows, 0..heads, 0..end, 0..dim];
        let out = (
            all_keys.clone().slice(used.clone()),
            all_values.clone().slice(used),
        );
        *slot = Some(LayerKv {
            keys: all_keys,
            values: all_values,
        });
        Ok(out)
    }

    /// Marks `s` more columns as filled (after every layer appended them).
    pub(crate) fn advance(&mut self, s: usize) {
        self.len += s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::device::Backend;

    fn config() -> LlamaConfig {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 8, "hidden_size": 4, "intermediate_size": 8,
            "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1
        }))
        .unwrap()
    }

    /// Keys `[rows, 1, cols, 2]` whose value at (row, col) is `10 * row + col`.
    fn block(rows: usize, cols: usize, device: &Device) -> Tensor<4> {
        let data: Vec<f32> = (0..rows)
            .flat_map(|r| (0..cols).flat_map(move |c| [(10 * r + c) as f32; 2]))
            .collect();
        Tensor::from_data(TensorData::new(data, [rows, 1, cols, 2]), device)
    }

    fn first_lane(t: Tensor<4>) -> Vec<f32> {
        t.into_data().iter::<f32>().step_by(2).collect()
    }

    #[test]
    fn append_grows_and_select_rows_trims_common_padding() {
        for backend in Backend::ALL {
            let device = backend.device();
            let mut cache = KvCache::new(&config(), vec![2, 0, 1], 2, &device);
            cache.reserve(3).unwrap();
            assert!(cache.capacity() >= 3);
            let (k, _) = cache
                .append(0, block(3, 3, &device), block(3, 3, &device))
                .unwrap();
            cache.advance(3);
            assert_eq!(k.dims(), [3, 1, 3, 2]);
            assert_eq!(cache.len(), 3);

            // Keep rows 2 and 0 (pads 1 and 2): one common pad column is dropped.
            cache.select_rows(&[2, 0]).unwrap();
            assert_eq!(cache.pads(), &[0, 1]);
            assert_eq!(cache.len(), 2);
            cache.reserve(1).unwrap();
            let one = Tensor::<4>::from_data(
                TensorData::new(vec![7.0f32, 7.0, 8.0, 8.0], [2, 1, 1, 2]),
                &device,
            );
            let (k, v) = cache.append(0, one.clone(), one).unwrap();
            cache.advance(1);
            assert_eq!(
                first_lane(k),
                vec![21.0, 22.0, 7.0, 1.0, 2.0, 8.0],
                "{backend}"
            );
            assert_eq!(first_lane(v).len(), 6);

            // Forking one row several times.
            cache.select_rows(&[1, 1, 1]).unwrap();
            assert_eq!(cache.rows(), 3);
            assert_eq!(cache.pads(), &[0, 0, 0]);
            assert!(cache.select_rows(&[3]).is_err());
        }
    }

    #[test]
    fn append_rejects_wrong_shapes() {
        let device = Backend::Flex.device();
        let mut cache = KvCache::new(&config(), vec![0], 4, &device);
        let wrong_rows = block(2, 1, &device);
        assert!(cache.append(0, wrong_rows.clone(), wrong_rows).is_err());
        let ok = block(1, 1, &device);
        assert!(cache.append(1, ok.clone(), ok).is_err(), "no layer 1");
    }
}
