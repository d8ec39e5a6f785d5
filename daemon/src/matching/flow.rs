//! An exact min-cost assignment of task units to volunteer units: successive shortest paths
//! with node potentials (Dijkstra on reduced costs), one task unit at a time.
//!
//! The network: each task `t` brings `units[t]` units of supply (its team size); a unit goes
//! either to a candidate volunteer `v` (arc cost `c(t, v)`, at most one unit of a task per
//! volunteer) or is skipped (cost `skip[t]`, the reward forgone). A volunteer's k-th unit costs
//! `marginal(v, k)` on top (non-decreasing in k: a convex load cost), up to its capacity. Every
//! path ends at one sink `T`. Adding one unit and sending it along the shortest path from its
//! task to `T` keeps the flow optimal for the units added so far, because reduced costs stay
//! non-negative on every residual arc (the potentials are the proof of optimality, and
//! [`Solution::potentials`] hands them out so callers can check arcs left out of the graph).
//!
//! Dijkstra stops when `T` is settled and only nodes it settled change potential, so a unit
//! that finds a free volunteer nearby costs only what it explores.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A cost in the solver's integer unit.
pub type Cost = i128;

/// The instance: candidates per task (volunteer index, arc cost), units per task, skip cost
/// per task, capacity per volunteer and its marginal load cost.
pub struct Network<'a> {
    pub volunteers: usize,
    pub capacity: &'a [u32],
    pub candidates: &'a [Vec<(u32, Cost)>],
    pub units: &'a [u8],
    pub skip: &'a [Cost],
    /// Cost of a volunteer's k-th unit (k from 0), non-decreasing in k.
    pub marginal: &'a dyn Fn(usize, u32) -> Cost,
}

/// Which volunteers each task got, and the potentials that prove the flow optimal.
pub struct Solution {
    /// Per task, the volunteers (indices) it was given.
    pub assigned: Vec<Vec<u32>>,
    /// Units of each task left unstaffed.
    pub skipped: Vec<u8>,
    /// Node potentials: volunteers `0..V`, tasks `V..V+N`, then the sink.
    pub potentials: Vec<Cost>,
    /// Total cost: arc costs, marginal load costs and skip costs.
    pub cost: Cost,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Via {
    None,
    /// From task node to volunteer over candidate `arc` of the task.
    Forward {
        task: u32,
        arc: u32,
    },
    /// From volunteer back to a task it serves, over that task's candidate `arc`.
    Backward {
        task: u32,
        arc: u32,
    },
    /// Task to sink (a skipped unit).
    Skip {
        task: u32,
    },
    /// Volunteer to sink (a unit of its capacity).
    Load {
        volunteer: u32,
    },
}

/// Solves the instance exactly.
pub fn solve(net: &Network<'_>) -> Solution {
    let v_count = net.volunteers;
    let t_count = net.candidates.len();
    let sink = v_count + t_count;
    let nodes = sink + 1;
    let mut pi: Vec<Cost> = vec![0; nodes];
    let mut used: Vec<u32> = vec![0; v_count];
    // Per task, whether each candidate arc carries flow; per volunteer, the (task, arc) it serves.
    let mut flow: Vec<Vec<bool>> = net
        .candidates
        .iter()
        .map(|c| vec![false; c.len()])
        .collect();
    let mut serves: Vec<Vec<(u32, u32)>> = vec![Vec::new(); v_count];
    let mut skipped: Vec<u8> = vec![0; t_count];
    // Dijkstra state, reset lazily by generation stamps.
    let mut dist: Vec<Cost> = vec![0; nodes];
    let mut via: Vec<Via> = vec![Via::None; nodes];
    let mut stamp: Vec<u32> = vec![0; nodes];
    let mut done: Vec<u32> = vec![0; nodes];
    let mut generation: u32 = 0;
    let mut heap: BinaryHeap<Reverse<(Cost, usize)>> = BinaryHeap::new();
    let mut settled: Vec<usize> = Vec::new();

    // Relaxes the arc x → y of cost c (reached `how`), in reduced costs.
    macro_rules! relax {
        ($x:expr, $y:expr, $c:expr, $how:expr) => {{
            let (x, y): (usize, usize) = ($x, $y);
            if done[y] != generation {
                let nd = dist[x] + $c + pi[x] - pi[y];
                if stamp[y] != generation || nd < dist[y] {
                    stamp[y] = generation;
                    dist[y] = nd;
                    via[y] = $how;
                    heap.push(Reverse((nd, y)));
                }
            }
        }};
    }

    for t in 0..t_count {
        let tn = v_count + t;
        // A new node: a potential that makes each of its arcs' reduced cost non-negative.
        let mut p = pi[sink] - net.skip[t];
        for &(v, c) in &net.candidates[t] {
            p = p.max(pi[v as usize] - c);
        }
        pi[tn] = p;
        for _unit in 0..net.units[t] {
            generation = generation.wrapping_add(1);
            if generation == 0 {
                stamp.iter_mut().for_each(|s| *s = 0);
                done.iter_mut().for_each(|s| *s = 0);
                generation = 1;
            }
            heap.clear();
            settled.clear();
            dist[tn] = 0;
            via[tn] = Via::None;
            stamp[tn] = generation;
            heap.push(Reverse((0, tn)));
            while let Some(Reverse((d, x))) = heap.pop() {
                if done[x] == generation || d > dist[x] {
                    continue;
                }
                done[x] = generation;
                settled.push(x);
                if x == sink {
                    break;
                }
                if x >= v_count {
                    let task = x - v_count;
                    for (arc, &(v, c)) in net.candidates[task].iter().enumerate() {
                        if !flow[task][arc] {
                            relax!(
                                x,
                                v as usize,
                                c,
                                Via::Forward {
                                    task: task as u32,
                                    arc: arc as u32,
                                }
                            );
                        }
                    }
                    relax!(x, sink, net.skip[task], Via::Skip { task: task as u32 });
                } else {
                    let v = x;
                    for &(task, arc) in &serves[v] {
                        let c = net.candidates[task as usize][arc as usize].1;
                        relax!(x, v_count + task as usize, -c, Via::Backward { task, arc });
                    }
                    if used[v] < net.capacity[v] {
                        relax!(
                            x,
                            sink,
                            (net.marginal)(v, used[v]),
                            Via::Load {
                                volunteer: v as u32,
                            }
                        );
                    }
                }
            }
            // The sink is always reachable (every task may skip), so it was settled.
            let dt = dist[sink];
            for &x in &settled {
                if dist[x] < dt {
                    pi[x] += dist[x] - dt;
                }
            }
            // Augment one unit along the path, from the sink back to the new unit's task.
            let mut at = sink;
            while at != tn {
                match via[at] {
                    Via::Load { volunteer } => {
                        used[volunteer as usize] += 1;
                        at = volunteer as usize;
                    }
                    Via::Skip { task } => {
                        skipped[task as usize] += 1;
                        at = v_count + task as usize;
                    }
                    Via::Forward { task, arc } => {
                        flow[task as usize][arc as usize] = true;
                        let v = net.candidates[task as usize][arc as usize].0;
                        serves[v as usize].push((task, arc));
                        at = v_count + task as usize;
                    }
                    Via::Backward { task, arc } => {
                        flow[task as usize][arc as usize] = false;
                        let v = net.candidates[task as usize][arc as usize].0;
                        let list = &mut serves[v as usize];
                        if let Some(i) = list.iter().position(|e| *e == (task, arc)) {
                            list.swap_remove(i);
                        }
                        at = v as usize;
                    }
                    Via::None => break,
                }
            }
        }
    }
    let mut cost: Cost = 0;
    let mut assigned = Vec::with_capacity(t_count);
    for t in 0..t_count {
        let mut vs = Vec::new();
        for (arc, &f) in flow[t].iter().enumerate() {
            if f {
                let (v, c) = net.candidates[t][arc];
                vs.push(v);
                cost = cost.saturating_add(c);
            }
        }
        cost = cost.saturating_add(Cost::from(skipped[t]).saturating_mul(net.skip[t]));
        assigned.push(vs);
    }
    for (v, &u) in used.iter().enumerate() {
        for k in 0..u {
            cost = cost.saturating_add((net.marginal)(v, k));
        }
    }
    Solution {
        assigned,
        skipped,
        potentials: pi,
        cost,
    }
}

/// Potentials as tight as the solution allows: minus each node's shortest distance to the sink
/// in the residual network (one Dijkstra from the sink over reversed arcs, on the reduced costs
/// `sol.potentials` make non-negative). They prove the same optimality, but price an arc left
/// out of the graph against what the task could really gain (reaching a volunteer with room to
/// spare), not against how far the solver's potentials drifted while it ran.
pub fn tightened(net: &Network<'_>, sol: &Solution) -> Vec<Cost> {
    let v_count = net.volunteers;
    let t_count = net.candidates.len();
    let sink = v_count + t_count;
    let pi = &sol.potentials;
    let mut used = vec![0u32; v_count];
    // Per volunteer: the (task, cost) arcs into it without flow, and the tasks it serves.
    let mut into: Vec<Vec<(u32, Cost)>> = vec![Vec::new(); v_count];
    let mut serves: Vec<Vec<(u32, Cost)>> = vec![Vec::new(); v_count];
    for (t, cands) in net.candidates.iter().enumerate() {
        for &(v, c) in cands {
            if sol.assigned[t].contains(&v) {
                used[v as usize] += 1;
                serves[v as usize].push((t as u32, c));
            } else {
                into[v as usize].push((t as u32, c));
            }
        }
    }
    let reduced = |x: usize, y: usize, c: Cost| c + pi[x] - pi[y];
    let mut dist: Vec<Option<Cost>> = vec![None; sink + 1];
    let mut done = vec![false; sink + 1];
    let mut heap: BinaryHeap<Reverse<(Cost, usize)>> = BinaryHeap::new();
    dist[sink] = Some(0);
    heap.push(Reverse((0, sink)));
    let push = |y: usize,
                d: Cost,
                dist: &mut Vec<Option<Cost>>,
                heap: &mut BinaryHeap<Reverse<(Cost, usize)>>| {
        if dist[y].is_none_or(|old| d < old) {
            dist[y] = Some(d);
            heap.push(Reverse((d, y)));
        }
    };
    while let Some(Reverse((d, x))) = heap.pop() {
        if done[x] || dist[x] != Some(d) {
            continue;
        }
        done[x] = true;
        if x == sink {
            // Arcs into the sink: every task's skip, every volunteer with room.
            for t in 0..t_count {
                let y = v_count + t;
                push(y, d + reduced(y, sink, net.skip[t]), &mut dist, &mut heap);
            }
            for (v, &u) in used.iter().enumerate() {
                if u < net.capacity[v] {
                    push(
                        v,
                        d + reduced(v, sink, (net.marginal)(v, u)),
                        &mut dist,
                        &mut heap,
                    );
                }
            }
        } else if x >= v_count {
            // Into a task: the reverse arcs of the volunteers serving it.
            let t = x - v_count;
            for &(v, c) in &net.candidates[t] {
                if sol.assigned[t].contains(&v) {
                    push(
                        v as usize,
                        d + reduced(v as usize, x, -c),
                        &mut dist,
                        &mut heap,
                    );
                }
            }
        } else {
            // Into a volunteer: the tasks whose arc to it carries no flow.
            for &(t, c) in &into[x] {
                let y = v_count + t as usize;
                push(y, d + reduced(y, x, c), &mut dist, &mut heap);
            }
        }
    }
    let far = dist.iter().flatten().copied().max().unwrap_or(0) + 1;
    (0..=sink).map(|x| pi[x] - dist[x].unwrap_or(far)).collect()
}
