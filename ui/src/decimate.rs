//! Thinning long series for display: a plot never needs more points than it has pixels.

/// Keeps the first and last point of each of `buckets` equal-width x ranges plus the minimum and the
/// maximum inside it, so spikes survive (a plain stride would drop them). `points` must be sorted by x.
/// Returns the input unchanged when it is already short enough.
pub fn min_max(points: &[[f64; 2]], buckets: usize) -> Vec<[f64; 2]> {
    if buckets == 0 || points.len() <= buckets * 4 {
        return points.to_vec();
    }
    let per_bucket = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(buckets * 4);
    for chunk in points.chunks(per_bucket) {
        let (mut lo, mut hi) = (0, 0);
        for (i, p) in chunk.iter().enumerate() {
            if p[1] < chunk[lo][1] {
                lo = i;
            }
            if p[1] > chunk[hi][1] {
                hi = i;
            }
        }
        let mut picks = [0, lo, hi, chunk.len() - 1];
        picks.sort_unstable();
        let mut last = usize::MAX;
        for i in picks {
            if i != last {
                out.push(chunk[i]);
                last = i;
            }
        }
    }
    out
}

/// Halves a series that has grown past `cap` points by averaging neighbours, so a very long run keeps
/// bounded memory while its curve keeps its shape.
pub fn compact_mean(points: &mut Vec<[f64; 2]>, cap: usize) {
    if points.len() <= cap {
        return;
    }
    let halved: Vec<[f64; 2]> = points
        .chunks(2)
        .map(|c| {
            let n = c.len() as f64;
            [
                c.iter().map(|p| p[0]).sum::<f64>() / n,
                c.iter().map(|p| p[1]).sum::<f64>() / n,
            ]
        })
        .collect();
    *points = halved;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_series_pass_through() {
        let pts: Vec<[f64; 2]> = (0..10).map(|i| [i as f64, i as f64]).collect();
        assert_eq!(min_max(&pts, 10), pts);
    }

    #[test]
    fn spikes_survive_and_count_is_bounded() {
        let mut pts: Vec<[f64; 2]> = (0..100_000).map(|i| [i as f64, 1.0]).collect();
        pts[54_321][1] = 50.0;
        pts[7][1] = -3.0;
        let out = min_max(&pts, 500);
        assert!(out.len() <= 2000, "{}", out.len());
        assert!(out.contains(&[54_321.0, 50.0]));
        assert!(out.contains(&[7.0, -3.0]));
        assert_eq!(out.first(), pts.first());
        assert_eq!(out.last(), pts.last());
        assert!(out.windows(2).all(|w| w[0][0] < w[1][0]), "x stays sorted");
    }

    #[test]
    fn compaction_halves_and_keeps_means() {
        let mut pts: Vec<[f64; 2]> = (0..10).map(|i| [i as f64, 2.0 * i as f64]).collect();
        compact_mean(&mut pts, 8);
        assert_eq!(pts.len(), 5);
        assert_eq!(pts[0], [0.5, 1.0]);
        assert_eq!(pts[4], [8.5, 17.0]);
    }
}
