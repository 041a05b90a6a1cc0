//! Which requests are asked together: prompts that share a long prefix (a
//! category's instructions and few-shot examples) go in the same batch, so
//! a local model prefills the prefix once per batch
//! ([`generate`](crate::llm::generate::generate)) and an API's prompt
//! cache sees it back to back.

use std::ops::Range;

pub use crate::llm::batch::common_prefix_len;

/// Splits `prompts`, sorted so that prompts sharing a prefix are adjacent
/// (sorted by their tokens or text), into consecutive batches of at most
/// `batch_size` (at least 1). Neighbours sharing at least `min_shared`
/// leading elements form a group (in sorted order everything between two
/// members shares it too); a batch never mixes a group with anything
/// else, so a category's last items do not share a batch with the next
/// category's first. Prompts that belong to no group are simply chunked.
pub fn prefix_batches<T: PartialEq>(
    prompts: &[&[T]],
    batch_size: usize,
    min_shared: usize,
) -> Vec<Range<usize>> {
    let n = prompts.len();
    let shares =
        |i: usize| i > 0 && i < n && common_prefix_len(prompts[i - 1], prompts[i]) >= min_shared;
    // Segments: groups, and runs of prompts in no group.
    let mut segments = Vec::new();
    let mut start = 0;
    for i in 1..n {
        let group = i - start >= 2 && shares(start + 1);
        let split = if group {
            !shares(i)
        } else {
            // A run in no group ends where a group starts.
            !shares(i) && shares(i + 1)
        };
        if split {
            segments.push(start..i);
            start = i;
        }
    }
    if start < n {
        segments.push(start..n);
    }
    let size = batch_size.max(1);
    segments
        .into_iter()
        .flat_map(|seg| {
            (seg.start..seg.end)
                .step_by(size)
                .map(move |b| b..(b + size).min(seg.end))
        })
        .collect()
}

/// The batches a local model runs `prompts` (in any order) in, as indices
/// into `prompts`: sorted so that prompts sharing at least `min_shared`
/// leading elements are adjacent ([`prefix_batches`]' groups, each batch's
/// prefix is prefilled once), and within a group by length, so that a
/// batch pads its suffixes to a similar length. At most `batch_size` (at
/// least 1) a batch; a batch never mixes groups.
pub fn length_batches<T: Ord>(
    prompts: &[&[T]],
    batch_size: usize,
    min_shared: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..prompts.len()).collect();
    order.sort_by(|&a, &b| prompts[a].cmp(prompts[b]));
    let sorted: Vec<&[T]> = order.iter().map(|&i| prompts[i]).collect();
    let size = batch_size.max(1);
    let mut batches = Vec::new();
    for group in prefix_batches(&sorted, sorted.len(), min_shared) {
        let members = &mut order[group];
        members
            .sort_by(|&a, &b| (prompts[a].len(), prompts[a]).cmp(&(prompts[b].len(), prompts[b])));
        batches.extend(members.chunks(size).map(<[usize]>::to_vec));
    }
    batches
}

/// Shared prompt bytes (about 16 tokens) that keep requests in one batch.
pub const SHARED_PROMPT_BYTES: usize = 64;

/// Batches of at most `batch_size` of `items` (already in prompt order, see
/// [`prefix_batches`]) by the prompt text `prompt` gives for each.
pub fn request_batches<T>(
    items: &[T],
    prompt: impl Fn(&T) -> &str,
    batch_size: usize,
) -> Vec<Range<usize>> {
    let prompts: Vec<&[u8]> = items.iter().map(|i| prompt(i).as_bytes()).collect();
    prefix_batches(&prompts, batch_size, SHARED_PROMPT_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix() {
        assert_eq!(common_prefix_len(b"abcd", b"abxd"), 2);
        assert_eq!(common_prefix_len(b"ab", b"abcd"), 2);
        assert_eq!(common_prefix_len::<u8>(b"", b"a"), 0);
    }

    #[test]
    fn length_batches_keep_groups_apart_and_order_each_by_length() {
        // Group 1: prefix of 20 ones, suffix lengths 3, 1, 2, 1 (unsorted
        // input); group 2: prefix of 20 twos; then one prompt alone.
        let p: Vec<Vec<u32>> = vec![
            [vec![1; 20], vec![7, 7, 7]].concat(),
            [vec![2; 20], vec![5]].concat(),
            [vec![1; 20], vec![9]].concat(),
            vec![3],
            [vec![1; 20], vec![8, 8]].concat(),
            [vec![1; 20], vec![4]].concat(),
            [vec![2; 20], vec![6, 6]].concat(),
        ];
        let prompts: Vec<&[u32]> = p.iter().map(Vec::as_slice).collect();
        assert_eq!(
            length_batches(&prompts, 3, 16),
            vec![vec![5, 2, 4], vec![0], vec![1, 6], vec![3]]
        );
        assert_eq!(
            length_batches(&prompts, 16, 16),
            vec![vec![5, 2, 4, 0], vec![1, 6], vec![3]]
        );
        assert!(length_batches::<u32>(&[], 4, 16).is_empty());
    }

    #[test]
    fn batches_end_where_the_shared_prefix_would_break() {
        let a: Vec<Vec<u32>> = (0..5).map(|i| [vec![1; 20], vec![i]].concat()).collect();
        let b: Vec<Vec<u32>> = (0..3).map(|i| [vec![2; 20], vec![i]].concat()).collect();
        let short: Vec<Vec<u32>> = (0..3).map(|i| vec![3, i]).collect();
        let all: Vec<&[u32]> = a
            .iter()
            .chain(&b)
            .chain(&short)
            .map(Vec::as_slice)
            .collect();
        assert_eq!(prefix_batches(&all, 16, 16), vec![0..5, 5..8, 8..11]);
        assert_eq!(prefix_batches(&all, 4, 16), vec![0..4, 4..5, 5..8, 8..11]);
        assert_eq!(
            prefix_batches(&all, 0, 16),
            (0..11).map(|i| i..i + 1).collect::<Vec<_>>()
        );
        assert!(prefix_batches::<u32>(&[], 4, 16).is_empty());
        // Prompts without a shared prefix are simply chunked.
        assert_eq!(prefix_batches(&all[8..], 2, 16), vec![0..2, 2..3]);
        // A prompt in no group before a group stays out of it.
        let lone = vec![0u32, 9];
        let mixed: Vec<&[u32]> = std::iter::once(lone.as_slice())
            .chain(all[8..].iter().copied())
            .chain(all[..5].iter().copied())
            .collect();
        assert_eq!(prefix_batches(&mixed, 16, 16), vec![0..4, 4..9]);
        // A shorter minimum counts the short prompts' one shared token too.
        assert_eq!(prefix_batches(&all[8..], 16, 1), vec![0..3]);
    }
}
