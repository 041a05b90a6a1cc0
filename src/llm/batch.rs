//! A padded batch of token sequences, as the decoder's full (training)
//! forward takes it.

use super::error::LlmError;

/// Number of leading elements `a` and `b` share.
pub fn common_prefix_len<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Token sequences of different lengths packed into a `[rows, cols]` grid.
///
/// Row `r` holds its `len(r)` real tokens in columns `start(r)..start(r) + len(r)`;
/// every other column is padding (masked out of attention, its logits are
/// meaningless). Left padding (`start(r) = cols - len(r)`) is what batched
/// generation uses; right padding (`start(r) = 0`) is the usual choice for
/// training. Positions count from 0 at each row's first real token either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBatch {
    ids: Vec<u32>,
    rows: usize,
    cols: usize,
    starts: Vec<usize>,
    lengths: Vec<usize>,
}

impl TokenBatch {
    /// Pads every sequence on the left with `pad` up to the longest one.
    pub fn left_padded(sequences: &[Vec<u32>], pad: u32) -> Result<Self, LlmError> {
        Self::padded(sequences, pad, true)
    }

    /// Pads every sequence on the right with `pad` up to the longest one.
    pub fn right_padded(sequences: &[Vec<u32>], pad: u32) -> Result<Self, LlmError> {
        Self::padded(sequences, pad, false)
    }

    fn padded(sequences: &[Vec<u32>], pad: u32, left: bool) -> Result<Self, LlmError> {
        if sequences.is_empty() {
            return Err(LlmError::Generation(
                "a token batch needs at least one sequence".into(),
            ));
        }
        if let Some(i) = sequences.iter().position(|s| s.is_empty()) {
            return Err(LlmError::Generation(format!(
                "sequence {i} of the token batch is empty"
            )));
        }
        let rows = sequences.len();
        let cols = sequences.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = vec![pad; rows * cols];
        let mut starts = Vec::with_capacity(rows);
        let mut lengths = Vec::with_capacity(rows);
        for (r, seq) in sequences.iter().enumerate() {
            let start = if left { cols - seq.len() } else { 0 };
            let row = &mut ids[r * cols..(r + 1) * cols];
            row[start..start + seq.len()].copy_from_slice(seq);
            starts.push(start);
            lengths.push(seq.len());
        }
        Ok(Self {
            ids,
            rows,
            cols,
            starts,
            lengths,
        })
    }

    /// Number of sequences.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Padded length.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// All ids, row-major (`rows * cols`).
    pub fn ids(&self) -> &[u32] {
        &self.ids
    }

    /// Column of row `row`'s first real token (0 for rows out of range).
    pub fn start(&self, row: usize) -> usize {
        self.starts.get(row).copied().unwrap_or(0)
    }

    /// Number of real tokens in row `row` (0 for rows out of range).
    pub fn len(&self, row: usize) -> usize {
        self.lengths.get(row).copied().unwrap_or(0)
    }

    /// Whether the batch has no rows (never true for a constructed batch).
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Leading padding columns of every row.
    pub fn starts(&self) -> &[usize] {
        &self.starts
    }

    /// Whether `(row, col)` holds a real token.
    pub fn is_real(&self, row: usize, col: usize) -> bool {
        let start = self.start(row);
        col >= start && col < start + self.len(row)
    }

    /// The token at `(row, col)`, padding included.
    pub fn id(&self, row: usize, col: usize) -> Option<u32> {
        if row < self.rows && col < self.cols {
            self.ids.get(row * self.cols + col).copied()
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_and_right_padding_place_tokens() {
        let seqs = vec![vec![5, 6, 7], vec![9]];
        let left = TokenBatch::left_padded(&seqs, 0).unwrap();
        assert_eq!((left.rows(), left.cols()), (2, 3));
        assert_eq!(left.ids(), &[5, 6, 7, 0, 0, 9]);
        assert_eq!(left.starts(), &[0, 2]);
        assert!(left.is_real(1, 2) && !left.is_real(1, 1));
        let right = TokenBatch::right_padded(&seqs, 1).unwrap();
        assert_eq!(right.ids(), &[5, 6, 7, 9, 1, 1]);
        assert_eq!(right.starts(), &[0, 0]);
        assert_eq!((right.len(0), right.len(1)), (3, 1));
        assert!(right.is_real(1, 0) && !right.is_real(1, 1));
        assert_eq!(right.id(1, 0), Some(9));
        assert_eq!(right.id(2, 0), None);
    }

    #[test]
    fn empty_inputs_are_errors() {
        assert!(TokenBatch::left_padded(&[], 0).is_err());
        let err = TokenBatch::right_padded(&[vec![1], vec![]], 0).unwrap_err();
        assert!(err.to_string().contains("sequence 1"), "{err}");
    }
}
