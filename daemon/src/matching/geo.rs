//! Great-circle distances and a uniform grid over points for "who is near" queries.

use std::collections::HashMap;

use crate::registry::GeoPoint;

/// The mean Earth radius the distances use.
pub const EARTH_RADIUS_KM: f64 = 6371.0;

/// Great-circle distance in kilometres (haversine, R = 6371.0 km).
pub fn haversine_km(a: GeoPoint, b: GeoPoint) -> f64 {
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// Points bucketed in cells of `cell_deg` degrees; answers "every point within r km" by
/// visiting only the cells that can hold one.
pub struct Grid {
    cell_deg: f64,
    cells: HashMap<(i32, i32), Vec<usize>>,
    points: Vec<GeoPoint>,
    /// The narrowest a cell is anywhere in the indexed latitudes, in km (a lower bound used to
    /// decide how many rings of cells a radius reaches).
    min_cell_km: f64,
}

impl Grid {
    pub fn new(points: Vec<GeoPoint>, cell_deg: f64) -> Self {
        let mut cells: HashMap<(i32, i32), Vec<usize>> = HashMap::new();
        let mut max_abs_lat: f64 = 0.0;
        for (i, p) in points.iter().enumerate() {
            cells.entry(Self::key(*p, cell_deg)).or_default().push(i);
            max_abs_lat = max_abs_lat.max(p.lat.abs());
        }
        // A cell's east-west width shrinks with the cosine of its latitude; take the worst.
        let lat = (max_abs_lat + cell_deg).min(89.9).to_radians();
        let deg_km = EARTH_RADIUS_KM * std::f64::consts::PI / 180.0;
        let min_cell_km = cell_deg * deg_km * lat.cos();
        Grid {
            cell_deg,
            cells,
            points,
            min_cell_km,
        }
    }

    #[allow(clippy::cast_possible_truncation)]
    fn key(p: GeoPoint, cell_deg: f64) -> (i32, i32) {
        (
            (p.lat / cell_deg).floor() as i32,
            (p.lon / cell_deg).floor() as i32,
        )
    }

    /// Indices of the points within `radius_km` of `at`, with their distances.
    pub fn within(&self, at: GeoPoint, radius_km: f64) -> Vec<(usize, f64)> {
        let mut out = Vec::new();
        if self.points.is_empty() || !radius_km.is_finite() {
            return self.all_within(at, radius_km);
        }
        #[allow(clippy::cast_possible_truncation)]
        let rings = ((radius_km / self.min_cell_km).ceil() as i64 + 1).min(1 << 20) as i32;
        if i64::from(rings) * i64::from(rings) > self.cells.len() as i64 * 4 {
            return self.all_within(at, radius_km);
        }
        let (ci, cj) = Self::key(at, self.cell_deg);
        for di in -rings..=rings {
            for dj in -rings..=rings {
                if let Some(ids) = self.cells.get(&(ci + di, cj + dj)) {
                    for &i in ids {
                        let d = haversine_km(at, self.points[i]);
                        if d <= radius_km {
                            out.push((i, d));
                        }
                    }
                }
            }
        }
        out
    }

    fn all_within(&self, at: GeoPoint, radius_km: f64) -> Vec<(usize, f64)> {
        self.points
            .iter()
            .enumerate()
            .map(|(i, p)| (i, haversine_km(at, *p)))
            .filter(|(_, d)| *d <= radius_km)
            .collect()
    }

    /// The `k` nearest points that `keep` accepts, nearest first: rings of cells are visited
    /// until `k` are found and no unvisited cell can hold a nearer one.
    pub fn nearest(
        &self,
        at: GeoPoint,
        k: usize,
        max_km: f64,
        mut keep: impl FnMut(usize) -> bool,
    ) -> Vec<(usize, f64)> {
        let mut found: Vec<(usize, f64)> = Vec::new();
        if k == 0 || self.points.is_empty() {
            return found;
        }
        let (ci, cj) = Self::key(at, self.cell_deg);
        let max_ring = self
            .cells
            .keys()
            .map(|(i, j)| (i - ci).abs().max((j - cj).abs()))
            .max()
            .unwrap_or(0);
        for ring in 0..=max_ring {
            // Every point in ring `ring` is at least (ring - 1) cells away.
            let floor_km = f64::from((ring - 1).max(0)) * self.min_cell_km;
            if floor_km > max_km {
                break;
            }
            if found.len() >= k && found[k - 1].1 < floor_km {
                break;
            }
            for di in -ring..=ring {
                for dj in -ring..=ring {
                    if di.abs() != ring && dj.abs() != ring {
                        continue;
                    }
                    if let Some(ids) = self.cells.get(&(ci + di, cj + dj)) {
                        for &i in ids {
                            let d = haversine_km(at, self.points[i]);
                            if d <= max_km && keep(i) {
                                found.push((i, d));
                            }
                        }
                    }
                }
            }
            found.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        }
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
        let grid = Grid::new(pts.clone(), 0.05);
        let at = p(35.55, 106.7);
        for r in [0.5, 3.0, 12.0, 80.0] {
            let mut a: Vec<usize> = grid.within(at, r).into_iter().map(|x| x.0).collect();
            let mut b: Vec<usize> = (0..pts.len())
                .filter(|i| haversine_km(at, pts[*i]) <= r)
                .collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "radius {r}");
        }
        let near = grid.nearest(at, 7, f64::INFINITY, |i| i % 2 == 0);
        let mut scan: Vec<(usize, f64)> = (0..pts.len())
            .filter(|i| i % 2 == 0)
            .map(|i| (i, haversine_km(at, pts[i])))
            .collect();
        scan.sort_by(|a, b| a.1.total_cmp(&b.1));
        scan.truncate(7);
        assert_eq!(near, scan);
    }
}
