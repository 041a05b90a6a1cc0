//! Mapping a list on one scoped thread per core, keeping its order (scoring
//! may run code in a sandbox, so it is spread over the cores).

/// `f` applied to every item, on up to one thread per core, results in the
/// items' order. A panic in `f` is re-raised on the caller's thread.
pub fn map_in_order<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if items.len() <= 1 || threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter();
    loop {
        let part: Vec<T> = items.by_ref().take(per_thread).collect();
        if part.is_empty() {
            break;
        }
        parts.push(part);
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(move || part.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_for_every_length() {
        for n in [0usize, 1, 2, 3, 7, 100] {
            let out = map_in_order((0..n).collect(), |i| i * 10);
            assert_eq!(out, (0..n).map(|i| i * 10).collect::<Vec<_>>());
        }
    }
}
