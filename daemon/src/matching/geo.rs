//! Great-circle distances and a uniform grid over points for "who is near" queries.

use crate::registry::GeoPoint;

/// The mean Earth radius the distances use.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance in kilometres (haversine, R = 6371.0 km).
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    haversine_with(a, a.lat.to_radians().cos(), b, b.lat.to_radians().cos())
}

/// [`haversine_km`] with each point's latitude cosine given (the grid keeps them), bit for bit
/// the same result.
fn haversine_with(a: GeoPoint, cos_a: f64, b: GeoPoint, cos_b: f64) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + cos_a * cos_b * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Points bucketed in a dense grid of cells of `cell_deg` degrees over their bounding box;
/// answers "the k nearest that pass a filter" by visiting rings of cells outward.
///
/// Longitudes are not wrapped: points on both sides of the antimeridian are not each other's
/// neighbours here (no county straddles it).
pub struct Grid {
    cell_deg: f64,
    /// Cell coordinates of the box's south-west cell, and the box's size in cells.
    lat0: i64,
    lon0: i64,
    rows: i64,
    cols: i64,
    /// Points by cell, row-major: cell `c` holds `items[start[c]..start[c + 1]]`.
    start: Vec<u32>,
    items: Vec<u32>,
    points: Vec<GeoPoint>,
    /// Each point's latitude cosine.
    cos_lat: Vec<f64>,
    /// The narrowest a cell is anywhere in the indexed latitudes, in km (a lower bound used to
    /// decide when no unvisited ring can hold a nearer point).
    min_cell_km: f64,
}

impl Grid {
    /// Indexes `points` with cells of `cell_deg` degrees, coarser if the box would need more
    /// cells than a few per point.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    pub fn new(points: Vec<GeoPoint>, cell_deg: f64) -> Self {
        let mut cell_deg = cell_deg;
        let limit = (points.len() as i64 * 16).max(4096);
        let (lat0, lon0, rows, cols) = loop {
            let (mut lo, mut hi) = ((i64::MAX, i64::MAX), (i64::MIN, i64::MIN));
            for p in &points {
                let (i, j) = Self::key(*p, cell_deg);
                lo = (lo.0.min(i), lo.1.min(j));
                hi = (hi.0.max(i), hi.1.max(j));
            }
            if points.is_empty() {
                break (0, 0, 0, 0);
            }
            let (rows, cols) = (hi.0 - lo.0 + 1, hi.1 - lo.1 + 1);
            if rows.saturating_mul(cols) <= limit || cell_deg >= 360.0 {
                break (lo.0, lo.1, rows, cols);
            }
            cell_deg *= 2.0;
        };
        let index = |p: GeoPoint| -> usize {
            let (i, j) = Self::key(p, cell_deg);
            ((i - lat0) * cols + (j - lon0)) as usize
        };
        let cells = (rows * cols) as usize;
        let mut start = vec![0u32; cells + 1];
        for p in &points {
            start[index(*p) + 1] += 1;
        }
        for c in 0..cells {
            start[c + 1] += start[c];
        }
        let mut fill = start.clone();
        let mut items = vec![0u32; points.len()];
        for (n, p) in points.iter().enumerate() {
            let c = index(*p);
            items[fill[c] as usize] = n as u32;
            fill[c] += 1;
        }
        let max_abs_lat = points.iter().map(|p| p.lat.abs()).fold(0.0, f64::max);
        // A cell's east-west width shrinks with the cosine of its latitude; take the worst.
        let lat = (max_abs_lat + cell_deg).min(89.9).to_radians();
        let deg_km = EARTH_RADIUS_KM * std::f64::consts::PI / 180.0;
        let min_cell_km = cell_deg * deg_km * lat.cos();
        let cos_lat = points.iter().map(|p| p.lat.to_radians().cos()).collect();
        Grid {
            cell_deg,
            cos_lat,
            lat0,
            lon0,
            rows,
            cols,
            start,
            items,
            points,
            min_cell_km,
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn key(p: GeoPoint, cell_deg: f64) -> (i64, i64) {
        (
            (p.lat / cell_deg).floor() as i64,
            (p.lon / cell_deg).floor() as i64,
        )
    }

    /// The points of cell (`i`, `j`) in box coordinates (empty outside the box).
    #[allow(clippy::cast_sign_loss, clippy::cast_possible_truncation)]
    fn cell(&self, i: i64, j: i64) -> &[u32] {
        if i < 0 || j < 0 || i >= self.rows || j >= self.cols {
            return &[];
        }
        let c = (i * self.cols + j) as usize;
        &self.items[self.start[c] as usize..self.start[c + 1] as usize]
    }

    /// The `k` nearest points that `keep` accepts (given the index and the distance), nearest
    /// first, ties by index: rings of cells are visited until `k` are found and no unvisited
    /// cell can hold a nearer one.
    pub fn nearest(
        &self,
        at: GeoPoint,
        k: usize,
        max_km: f64,
        mut keep: impl FnMut(usize, f64) -> bool,
    ) -> Vec<(usize, f64)> {
        let mut found: Vec<(usize, f64)> = Vec::new();
        if k == 0 || self.points.is_empty() {
            return found;
        }
        let (ci, cj) = Self::key(at, self.cell_deg);
        let (ci, cj) = (ci - self.lat0, cj - self.lon0);
        let max_ring = [ci, self.rows - 1 - ci, cj, self.cols - 1 - cj]
            .into_iter()
            .map(i64::abs)
            .max()
            .unwrap_or(0)
            .max(ci.abs())
            .max(cj.abs());
        let order = |a: &(usize, f64), b: &(usize, f64)| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0));
        let cos_at = at.lat.to_radians().cos();
        let mut visit = |i: i64, j: i64, found: &mut Vec<(usize, f64)>| {
            for &n in self.cell(i, j) {
                let n = n as usize;
                let d = haversine_with(at, cos_at, self.points[n], self.cos_lat[n]);
                if d <= max_km && keep(n, d) {
                    found.push((n, d));
                }
            }
        };
        for ring in 0..=max_ring {
            // Every point in ring `ring` is at least (ring - 1) cells away.
            #[allow(clippy::cast_precision_loss)]
            let floor_km = (ring - 1).max(0) as f64 * self.min_cell_km;
            if floor_km > max_km {
                break;
            }
            // (At most k are kept, so the farthest kept is the k-th.)
            if found.len() >= k
                && found
                    .iter()
                    .copied()
                    .max_by(order)
                    .is_some_and(|x| x.1 < floor_km)
            {
                break;
            }
            let before = found.len();
            if ring == 0 {
                visit(ci, cj, &mut found);
            } else {
                // The ring's top and bottom rows, then its left and right columns.
                let (j_lo, j_hi) = ((cj - ring).max(0), (cj + ring).min(self.cols - 1));
                for i in [ci - ring, ci + ring] {
                    if (0..self.rows).contains(&i) {
                        for j in j_lo..=j_hi {
                            visit(i, j, &mut found);
                        }
                    }
                }
                let (i_lo, i_hi) = ((ci - ring + 1).max(0), (ci + ring - 1).min(self.rows - 1));
                for j in [cj - ring, cj + ring] {
                    if (0..self.cols).contains(&j) {
                        for i in i_lo..=i_hi {
                            visit(i, j, &mut found);
                        }
                    }
                }
            }
            // Only the k nearest so far matter (and the k-th, to know when to stop).
            if found.len() > k && found.len() > before {
                found.select_nth_unstable_by(k - 1, order);
                found.truncate(k);
            }
        }
        found.sort_unstable_by(order);
        found.truncate(k);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(lat: f64, lon: f64) -> GeoPoint {
        GeoPoint { lat, lon }
    }

    #[test]
    fn distances_are_great_circle() {
        // One degree of latitude is R·π/180 km.
        let d = haversine_km(p(35.0, 106.0), p(36.0, 106.0));
        assert!(
            (d - 6371.0 * std::f64::consts::PI / 180.0).abs() < 1e-9,
            "{d}"
        );
        assert_eq!(haversine_km(p(35.5, 106.6), p(35.5, 106.6)), 0.0);
    }

    #[test]
    fn the_grid_finds_what_a_scan_finds() {
        let mut pts = Vec::new();
        for i in 0..400 {
            let f = f64::from(i);
            pts.push(p(
                35.3 + (f * 0.7919).fract() * 0.6,
                106.4 + (f * 0.3571).fract() * 0.7,
            ));
        }
        // Two points at one home: ties go by index.
        pts.push(pts[10]);
        let scan = |pts: &[GeoPoint], at: GeoPoint, k: usize, max: f64| {
            let mut all: Vec<(usize, f64)> = (0..pts.len())
                .filter(|i| i % 3 != 1)
                .map(|i| (i, haversine_km(at, pts[i])))
                .filter(|(_, d)| *d <= max)
                .collect();
            all.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            all.truncate(k);
            all
        };
        let queries = [
            p(35.55, 106.7),
            pts[10],
            // Outside the box, on each side and far away.
            p(34.9, 106.7),
            p(35.55, 107.5),
            p(-33.9, 151.2),
        ];
        for cell in [0.01, 0.05, 0.3] {
            let grid = Grid::new(pts.clone(), cell);
            for at in queries {
                for k in [1, 7, 64, 1000] {
                    for max in [0.5, 5.0, 30.0, f64::INFINITY] {
                        let near = grid.nearest(at, k, max, |i, _| i % 3 != 1);
                        assert_eq!(near, scan(&pts, at, k, max), "cell {cell} at {at:?} k {k}");
                    }
                }
            }
        }
        // Points across the globe: the grid coarsens itself instead of allocating a cell per
        // square degree-fraction, and still answers exactly.
        let world: Vec<GeoPoint> = (0..200)
            .map(|i| {
                let f = f64::from(i);
                p(
                    -80.0 + (f * 0.618).fract() * 160.0,
                    -170.0 + (f * 0.414).fract() * 340.0,
                )
            })
            .collect();
        let grid = Grid::new(world.clone(), 0.001);
        assert!(grid.start.len() <= 4097 + 1, "{} cells", grid.start.len());
        let at = p(35.0, 106.0);
        let near = grid.nearest(at, 5, f64::INFINITY, |i, _| i % 3 != 1);
        assert_eq!(near, scan(&world, at, 5, f64::INFINITY));
    }
}
