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
    km_of_h(haversine_h(a, cos_a, b, cos_b))
}

/// The haversine term `h = sin²(Δφ/2) + cos φ₁ cos φ₂ sin²(Δλ/2)`.
fn haversine_h(a: GeoPoint, cos_a: f64, b: GeoPoint, cos_b: f64) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    (dlat / 2.0).sin().powi(2) + cos_a * cos_b * (dlon / 2.0).sin().powi(2)
}

/// The distance of a haversine term.
fn km_of_h(h: f64) -> f64 {
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Points bucketed in a dense grid of cells of `cell_deg` degrees over their bounding box;
/// answers "the k nearest that pass a filter" by visiting rings of cells outward.
///
/// Cells do not wrap around the antimeridian, but distances do: points on both sides of it are
/// still found as each other's neighbours, only more slowly (no county straddles it).
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
    /// The least latitude cosine of any point (a lower bound used to decide when no unvisited
    /// ring can hold a nearer point).
    cos_min: f64,
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
        let cos_min = max_abs_lat.min(90.0).to_radians().cos().max(0.0);
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
            cos_min,
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
    /// first, ties by index (see [`nearest`]).
    pub fn nearest(
        &self,
        at: GeoPoint,
        k: usize,
        max_km: f64,
        keep: impl FnMut(usize, f64) -> bool,
    ) -> Vec<(usize, f64)> {
        let labels: Vec<usize> = (0..self.points.len()).collect();
        nearest(&[(self, &labels)], at, k, max_km, None, keep)
            .into_iter()
            .map(|f| (f.label, f.km))
            .collect()
    }

    /// Lower and upper bounds on the haversine term `h` of every point cell (`i`, `j`) (box
    /// coordinates) can hold, seen from `q` (the lower bound's longitude part is dropped where
    /// the cell spans more than half the globe away, as there the term is not monotone).
    fn cell_bounds(&self, q: &Query, i: i64, j: i64) -> (f64, f64) {
        // The cell's edges, widened by a hair: a point is filed by a division that rounds.
        const HAIR: f64 = 1e-9;
        #[allow(clippy::cast_precision_loss)]
        let (lat_lo, lon_lo) = (
            (i + self.lat0) as f64 * self.cell_deg - HAIR,
            (j + self.lon0) as f64 * self.cell_deg - HAIR,
        );
        let (lat_hi, lon_hi) = (
            lat_lo + self.cell_deg + 2.0 * HAIR,
            lon_lo + self.cell_deg + 2.0 * HAIR,
        );
        let dlat = (lat_lo - q.at.lat).max(q.at.lat - lat_hi).max(0.0);
        let dlon = (lon_lo - q.at.lon).max(q.at.lon - lon_hi).max(0.0);
        let far_lon = (q.at.lon - lon_lo).abs().max((lon_hi - q.at.lon).abs());
        let cos_cell = lat_lo.abs().max(lat_hi.abs()).min(90.0).to_radians().cos();
        let lon_term = if far_lon <= 180.0 {
            q.cos * cos_cell * sin_sq_floor((dlon / 2.0).to_radians())
        } else {
            0.0
        };
        let floor = (sin_sq_floor((dlat / 2.0).to_radians()) + lon_term) * LOWER;
        // Above: sin x ≤ x, the widest latitude gap and longitude gap, the largest cosine.
        let far_lat = (q.at.lat - lat_lo).abs().max((lat_hi - q.at.lat).abs());
        let cos_max = if lat_lo <= 0.0 && lat_hi >= 0.0 {
            1.0
        } else {
            lat_lo.abs().min(lat_hi.abs()).min(90.0).to_radians().cos()
        };
        let (a, b) = ((far_lat / 2.0).to_radians(), (far_lon / 2.0).to_radians());
        let ceiling = (a * a + q.cos * cos_max * b * b) * UPPER;
        (floor, ceiling)
    }

    /// The ring `ring` cells around (`ci`, `cj`) that lie in the box, each once.
    fn ring(&self, ci: i64, cj: i64, ring: i64, mut each: impl FnMut(i64, i64)) {
        if ring == 0 {
            each(ci, cj);
            return;
        }
        // The ring's top and bottom rows, then its left and right columns.
        let (j_lo, j_hi) = ((cj - ring).max(0), (cj + ring).min(self.cols - 1));
        for i in [ci - ring, ci + ring] {
            if (0..self.rows).contains(&i) {
                for j in j_lo..=j_hi {
                    each(i, j);
                }
            }
        }
        let (i_lo, i_hi) = ((ci - ring + 1).max(0), (ci + ring - 1).min(self.rows - 1));
        for j in [cj - ring, cj + ring] {
            if (0..self.cols).contains(&j) {
                for i in i_lo..=i_hi {
                    each(i, j);
                }
            }
        }
    }
}

/// Lower bounds are shrunk by this factor, upper ones grown by the next, so that rounding never
/// takes one past the value it bounds.
const LOWER: f64 = 1.0 - 1e-9;
const UPPER: f64 = 1.0 + 1e-9;

/// A lower bound on `sin(x)²` for `x ≥ 0` without calling `sin`: `sin x ≥ x − x³/6`.
fn sin_sq_floor(x: f64) -> f64 {
    let s = x - x * x * x / 6.0;
    if s > 0.0 { s * s } else { 0.0 }
}

/// The haversine term of a distance: `d = 2R·asin(√h)`, so ordering by `h` orders by `d`.
fn h_of_km(km: f64) -> f64 {
    let x = (km / (2.0 * EARTH_RADIUS_KM)).min(std::f64::consts::FRAC_PI_2);
    x.sin().powi(2)
}

/// Where a search stands from.
struct Query {
    at: GeoPoint,
    cos: f64,
}

/// A point found: its label, its distance, and the haversine term the search orders by
/// (nearest first, ties by label).
#[derive(Debug, Clone, Copy)]
pub struct Found {
    pub label: usize,
    pub km: f64,
    h: f64,
}

impl PartialEq for Found {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Found {}

impl PartialOrd for Found {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Found {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.h
            .total_cmp(&other.h)
            .then(self.label.cmp(&other.label))
    }
}

/// The `k` nearest points of several grids that `keep` accepts (given the point's label and its
/// distance), no farther than `max_km`, and after `after` in the search's order (where a
/// previous search ended): nearest first, ties by label. Each grid comes with the labels of its
/// points (its point `n` is `labels[n]`).
///
/// Exact: a grid's cells are visited in rings outward, and a cell (or a point) is passed over
/// only when a lower bound on its distance already exceeds the `k`-th best found; the search of a
/// grid ends when a whole ring is that far. Distances are compared through the haversine term
/// `h` (monotone in the distance), and `keep` and the arc sine run only for points that would
/// enter the best `k`. A search that goes on from `after` passes over cells and points by an
/// upper bound too: what is surely before `after` is not looked at again.
pub fn nearest(
    grids: &[(&Grid, &[usize])],
    at: GeoPoint,
    k: usize,
    max_km: f64,
    after: Option<Found>,
    mut keep: impl FnMut(usize, f64) -> bool,
) -> Vec<Found> {
    let mut best: std::collections::BinaryHeap<Found> = std::collections::BinaryHeap::new();
    if k == 0 {
        return Vec::new();
    }
    let q = Query {
        at,
        cos: at.lat.to_radians().cos(),
    };
    // Past this no point is kept; a hair over, as the exact test is on the distance.
    let h_max = if max_km.is_finite() {
        h_of_km(max_km) / LOWER
    } else {
        f64::INFINITY
    };
    // What a point must beat to be kept: the k-th best's h once there are k.
    let bar = |best: &std::collections::BinaryHeap<Found>| -> f64 {
        if best.len() < k {
            h_max
        } else {
            best.peek().map_or(h_max, |b| b.h.min(h_max))
        }
    };
    for &(grid, labels) in grids {
        if grid.points.is_empty() {
            continue;
        }
        let (ci, cj) = Grid::key(at, grid.cell_deg);
        let (ci, cj) = (ci - grid.lat0, cj - grid.lon0);
        let max_ring = [ci, grid.rows - 1 - ci, cj, grid.cols - 1 - cj]
            .into_iter()
            .map(i64::abs)
            .max()
            .unwrap_or(0);
        // Where the box reaches more than half the globe away in longitude, a far ring may hold
        // points near across the antimeridian: then no ring ends the search (cells are still
        // passed over one by one).
        #[allow(clippy::cast_precision_loss)]
        let wraps = {
            let west = grid.lon0 as f64 * grid.cell_deg;
            let east = (grid.lon0 + grid.cols) as f64 * grid.cell_deg;
            (at.lon - west).abs().max((east - at.lon).abs()) > 180.0
        };
        for ring in 0..=max_ring {
            // Every point in ring `ring` is (ring - 1) whole cells or more away in latitude or in
            // longitude: at least that far along a meridian, or across that much longitude at
            // the latitudes of the query and of the farthest-from-equator point.
            #[allow(clippy::cast_precision_loss)]
            let span = (ring - 1).max(0) as f64 * grid.cell_deg;
            if !wraps
                && span <= 180.0
                && q.cos * grid.cos_min * sin_sq_floor((span / 2.0).to_radians()) * LOWER
                    > bar(&best)
            {
                break;
            }
            grid.ring(ci, cj, ring, |i, j| {
                let cell = grid.cell(i, j);
                if cell.is_empty() {
                    return;
                }
                let (floor, ceiling) = grid.cell_bounds(&q, i, j);
                if floor > bar(&best) || after.is_some_and(|a| ceiling < a.h) {
                    return;
                }
                for &n in cell {
                    let n = n as usize;
                    let p = grid.points[n];
                    let limit = bar(&best);
                    // A cheap lower bound first: most points are passed over on it.
                    // The half-angles as `haversine_h` computes them (radians first, then the
                    // difference), so the bounds and the term differ only by the factors.
                    let (a, b) = (
                        (p.lat.to_radians() - at.lat.to_radians()).abs() / 2.0,
                        (p.lon - at.lon).to_radians().abs() / 2.0,
                    );
                    let cos_p = q.cos * grid.cos_lat[n];
                    if b <= std::f64::consts::FRAC_PI_2 {
                        let floor = (sin_sq_floor(a) + cos_p * sin_sq_floor(b)) * LOWER;
                        if floor > limit {
                            continue;
                        }
                    }
                    if after.is_some_and(|x| (a * a + cos_p * b * b) * UPPER < x.h) {
                        continue;
                    }
                    let h = haversine_h(at, q.cos, p, grid.cos_lat[n]);
                    let found = Found {
                        label: labels[n],
                        km: 0.0,
                        h,
                    };
                    if h > limit
                        || after.is_some_and(|x| found <= x)
                        || (best.len() >= k && best.peek().is_some_and(|w| *w <= found))
                    {
                        continue;
                    }
                    let km = km_of_h(h);
                    if km > max_km || !keep(found.label, km) {
                        continue;
                    }
                    best.push(Found { km, ..found });
                    if best.len() > k {
                        best.pop();
                    }
                }
            });
        }
    }
    best.into_sorted_vec()
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
        // From inside the spread, near a pole, across the antimeridian from the nearest points.
        for at in [
            p(35.0, 106.0),
            p(89.5, 10.0),
            p(-88.0, -100.0),
            p(5.0, 179.9),
        ] {
            for k in [1, 5, 60] {
                let near = grid.nearest(at, k, f64::INFINITY, |i, _| i % 3 != 1);
                assert_eq!(near, scan(&world, at, k, f64::INFINITY), "at {at:?} k {k}");
            }
        }
    }

    #[test]
    fn points_a_hair_from_the_query_are_neither_lost_nor_repeated() {
        // Homes at the person's door and within millimetres of it, some at one address.
        let at = p(35.541_234_567, 106.661_234_567);
        let mut pts = Vec::new();
        for i in 0..40 {
            let f = f64::from(i % 10) * 1e-8;
            pts.push(p(at.lat + f, at.lon - f / 2.0));
        }
        pts.push(at);
        let grid = Grid::new(pts.clone(), 0.02);
        let labels: Vec<usize> = (0..pts.len()).collect();
        let grids = [(&grid, &labels[..])];
        let mut scan: Vec<(usize, f64)> = (0..pts.len())
            .map(|i| (i, haversine_km(at, pts[i])))
            .collect();
        scan.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        for k in [1, 3, 7] {
            let mut after = None;
            let mut stream = Vec::new();
            loop {
                let more = nearest(&grids, at, k, f64::INFINITY, after, |_, _| true);
                after = more.last().copied().or(after);
                stream.extend(more.iter().map(|f| (f.label, f.km)));
                if more.len() < k {
                    break;
                }
            }
            assert_eq!(stream, scan, "k {k}");
        }
    }

    #[test]
    fn several_grids_answer_as_one_scan_by_label() {
        // Three groups of points with interleaved labels, each in its own grid.
        let all: Vec<GeoPoint> = (0..600)
            .map(|i| {
                let f = f64::from(i);
                p(
                    35.3 + (f * 0.5813).fract() * 0.5,
                    106.4 + (f * 0.2731).fract() * 0.6,
                )
            })
            .collect();
        let groups: Vec<(Grid, Vec<usize>)> = (0..3)
            .map(|g| {
                let labels: Vec<usize> = (0..all.len()).filter(|i| i % 3 == g).collect();
                let pts = labels.iter().map(|&i| all[i]).collect();
                (Grid::new(pts, 0.02), labels)
            })
            .collect();
        let grids: Vec<(&Grid, &[usize])> = groups.iter().map(|(g, l)| (g, &l[..])).collect();
        let keep = |label: usize| label % 7 != 3;
        for at in [p(35.5, 106.7), all[42], p(36.5, 105.0)] {
            for k in [1, 8, 50, 700] {
                for max in [1.0, 8.0, f64::INFINITY] {
                    let near: Vec<(usize, f64)> = nearest(&grids, at, k, max, None, |l, _| keep(l))
                        .into_iter()
                        .map(|f| (f.label, f.km))
                        .collect();
                    let mut scan: Vec<(usize, f64)> = (0..all.len())
                        .filter(|&i| keep(i))
                        .map(|i| (i, haversine_km(at, all[i])))
                        .filter(|(_, d)| *d <= max)
                        .collect();
                    scan.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
                    let all = scan.clone();
                    scan.truncate(k);
                    assert_eq!(near, scan, "at {at:?} k {k} max {max}");
                    // Going on from where each search ended finds the same stream.
                    let mut after = None;
                    let mut stream = Vec::new();
                    loop {
                        let more = nearest(&grids, at, k, max, after, |l, _| keep(l));
                        after = more.last().copied().or(after);
                        stream.extend(more.iter().map(|f| (f.label, f.km)));
                        if more.len() < k {
                            break;
                        }
                    }
                    assert_eq!(stream, all, "stream at {at:?} k {k} max {max}");
                }
            }
        }
    }
}
