//! The Pareto front of students on cost (lower is better) and retention
//! (higher is better).

/// Indices of the points no other point dominates, sorted by cost (then by
/// retention, highest first). A point dominates another when it costs at
/// most as much and retains at least as much, and is strictly better on one
/// of the two. Points with a non-finite coordinate are never on the front.
pub(super) fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let finite = |&(c, r): &(f64, f64)| c.is_finite() && r.is_finite();
    let dominates =
        |a: (f64, f64), b: (f64, f64)| a.0 <= b.0 && a.1 >= b.1 && (a.0 < b.0 || a.1 > b.1);
    let mut front: Vec<usize> = points
        .iter()
        .enumerate()
        .filter(|(_, p)| finite(p))
        .filter(|&(i, &p)| {
            !points
                .iter()
                .enumerate()
                .any(|(j, &q)| j != i && finite(&q) && dominates(q, p))
        })
        .map(|(i, _)| i)
        .collect();
    front.sort_by(|&a, &b| {
        let (pa, pb) = (points[a], points[b]);
        pa.0.total_cmp(&pb.0).then(pb.1.total_cmp(&pa.1))
    });
    front
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dominated_points_are_left_out() {
        // (cost, retention): 1 is cheaper than 0 and retains more; 2 costs
        // more than 1 but retains more still; 3 is worse than 2 on both.
        let points = [(3.0, 0.80), (1.0, 0.85), (4.0, 0.97), (5.0, 0.90)];
        assert_eq!(pareto_front(&points), vec![1, 2]);
    }

    #[test]
    fn ties_stay_on_the_front_and_nan_never_is() {
        // Two identical points dominate neither each other; NaN is ignored.
        let points = [(2.0, 0.9), (f64::NAN, 1.0), (2.0, 0.9), (1.0, 0.5)];
        assert_eq!(pareto_front(&points), vec![3, 0, 2]);
        // Same cost, lower retention: dominated.
        assert_eq!(pareto_front(&[(1.0, 0.9), (1.0, 0.8)]), vec![0]);
        assert!(pareto_front(&[]).is_empty());
    }
}
