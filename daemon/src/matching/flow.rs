//! An exact min-cost assignment of task units to volunteer units: successive shortest paths
//! with node potentials (Dijkstra on reduced costs), one task unit at a time, over a candidate
//! graph that grows lazily — only as far as a shortest path could reach.
//!
//! The network: each task `t` brings `units[t]` units of supply (its team size); a unit goes
//! either to a candidate volunteer `v` (arc cost `c(t, v)`, at most one unit of a task per
//! volunteer) or is skipped (cost `skip[t]`, the reward forgone). A volunteer's k-th unit costs
//! `marginal(v, k)` on top (non-negative and non-decreasing in k: a convex load cost), up to its
//! capacity. Every path ends at one sink `T`. Adding one unit and sending it along the shortest
//! path from its task to `T` keeps the flow optimal for the units added so far, because reduced
//! costs stay non-negative on every residual arc.
//!
//! **The full graph, without building it.** A task's arcs come from [`Source::more`] in batches,
//! nearest first, each batch with a lower bound on the cost of every arc still to come. An arc
//! not yet relaxed leads to a volunteer of the task's groups (stations), whose potentials are
//! bounded above by `π̂` (potentials start at zero and only ever fall, so a bound taken once
//! holds from then on; the bounds are taken afresh every [`REFRESH`] tasks). So `rest(t) + π(t)
//! − π̂` bounds the reduced cost of every such arc from below, and Dijkstra treats "the rest of
//! `t`'s arcs" as one more entry in its queue, keyed by that bound; if the search reaches it
//! before the sink, the next batch is fetched and relaxed, exactly as if the arcs had been there
//! all along. If it does not, no unfetched arc could shorten the path, and the potential update
//! keeps every reduced cost non-negative (the entry's key was at least the sink's distance). So
//! the result is the optimum of the full graph — every eligible arc — while only the arcs a
//! shortest path came near are ever built. A new task's potential is set so that its arcs,
//! those still to come included, start with non-negative reduced costs.
//!
//! The same holds inside what is fetched: a settled task relaxes its arcs a few at a time,
//! nearest first, the rest waiting in the queue behind a lower bound on their reduced costs.
//!
//! Dijkstra stops when `T` is settled and only nodes it settled change potential, so a unit
//! that finds a free volunteer nearby costs only what it explores.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A cost in the solver's integer unit: wide, since the priority levels' skip costs are.
pub type Cost = i128;
/// One arc's own cost (a distance less a bonus): far inside `i64`.
pub type ArcCost = i64;

/// Where every volunteer's potential starts: it only falls from there.
const PI_MAX: Cost = 0;
/// Arcs of a task relaxed at a time: the rest wait in the queue behind a lower bound, since
/// most searches end long before they would matter.
const BATCH: usize = 8;
/// Units added between refreshes of the bounds on each group's potentials.
const REFRESH: usize = 128;

/// Where a task's arcs come from.
pub trait Source {
    /// The next arcs of `task` (volunteer index, cost) after the `have` already fetched, and a
    /// lower bound on the cost of every arc still to come after them (`None`: there are none).
    /// The bound never falls from one call to the next.
    fn more(&mut self, task: usize, have: usize) -> (Vec<(u32, ArcCost)>, Option<Cost>);
}

/// The instance: units per task, skip cost per task, capacity per volunteer and its marginal
/// load cost.
pub struct Network<'a> {
    pub volunteers: usize,
    pub capacity: &'a [u32],
    pub units: &'a [u8],
    pub skip: &'a [Cost],
    /// Cost of a volunteer's k-th unit (k from 0), non-negative and non-decreasing in k.
    pub marginal: &'a dyn Fn(usize, u32) -> Cost,
    /// Volunteers fall in `groups` groups (stations): each volunteer's group. Every arc of a
    /// task leads to a volunteer of the groups in `sets[set_of_task[task]]`.
    pub groups: usize,
    pub group_of: &'a [u32],
    pub sets: &'a [Vec<usize>],
    pub set_of_task: &'a [u32],
}

/// One candidate arc of a task: the volunteer, the cost, and whether the current flow uses it
/// (kept together, as the search reads them together).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arc {
    pub volunteer: u32,
    carries: bool,
    pub cost: ArcCost,
}

impl Arc {
    pub fn new(volunteer: u32, cost: ArcCost) -> Self {
        Self {
            volunteer,
            carries: false,
            cost,
        }
    }
}

/// The arcs fetched so far, per task, and the bound on the rest. Kept between solves (the
/// arcs stay valid), so a second solve of the same tasks starts where the first left off.
pub struct Arcs {
    pub of: Vec<Vec<Arc>>,
    /// Per task: a lower bound on the cost of every arc not yet in `of`; `None` when all are.
    pub rest: Vec<Option<Cost>>,
    /// Per task: how far below an earlier arc's cost a later one's can be (arcs come cheapest
    /// first but for rounding; the source says by how much), so that `of[t][i].cost − slack[t]`
    /// bounds every arc from `i` on.
    pub slack: Vec<Cost>,
}

impl Arcs {
    /// No arc fetched yet for `tasks` tasks (the first fetch happens when each is added).
    pub fn new(tasks: usize) -> Self {
        Self {
            of: vec![Vec::new(); tasks],
            rest: vec![Some(Cost::MIN); tasks],
            slack: vec![0; tasks],
        }
    }

    /// Arcs fetched in all.
    pub fn count(&self) -> usize {
        self.of.iter().map(Vec::len).sum()
    }
}

/// Which volunteers each task got.
pub struct Solution {
    /// Per task, the volunteers (indices) it was given.
    pub assigned: Vec<Vec<u32>>,
    /// Units of each task left unstaffed.
    pub skipped: Vec<u8>,
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

/// A node's state, in one place: a search reads all of it at once.
#[derive(Clone, Copy)]
struct Node {
    /// The potential.
    pi: Cost,
    /// The current search's distance (valid when `stamp` is the search's generation).
    dist: Cost,
    stamp: u32,
    /// The generation of the search that settled the node.
    done: u32,
    /// A task's next arc to relax in the current search.
    next_arc: u32,
    via: Via,
}

/// Dijkstra's queue. Node keys (distances) are never negative and never fall below the last
/// one taken, and nearly all fit 64 bits; those that do not (sums with the skip costs) wait in a
/// second heap, taken only once the first is empty. (Entries for arcs still to relax may carry
/// a bound below the last key taken: they are taken next, as from one heap.)
struct Queue {
    small: BinaryHeap<Reverse<(u64, u32)>>,
    large: BinaryHeap<Reverse<(Cost, u32)>>,
}

impl Queue {
    /// Queues `item` at `key`. A key below zero (a loose bound on arcs still to relax) is
    /// taken as zero: such an entry only asks to be taken at once.
    fn push(&mut self, key: Cost, item: usize) {
        #[allow(clippy::cast_possible_truncation)]
        let item = item as u32;
        match u64::try_from(key.max(0)) {
            Ok(k) => self.small.push(Reverse((k, item))),
            Err(_) => self.large.push(Reverse((key, item))),
        }
    }

    fn pop(&mut self) -> Option<(Cost, usize)> {
        match self.small.pop() {
            Some(Reverse((k, item))) => Some((Cost::from(k), item as usize)),
            None => self
                .large
                .pop()
                .map(|Reverse((k, item))| (k, item as usize)),
        }
    }

    fn clear(&mut self) {
        self.small.clear();
        self.large.clear();
    }
}

/// Solves the instance exactly over every arc `source` can give.
pub fn solve(net: &Network<'_>, arcs: &mut Arcs, source: &mut dyn Source) -> Solution {
    let v_count = net.volunteers;
    let t_count = arcs.of.len();
    let sink = v_count + t_count;
    let nodes = sink + 1;
    let mut node: Vec<Node> = vec![
        Node {
            pi: 0,
            dist: 0,
            stamp: 0,
            done: 0,
            next_arc: 0,
            via: Via::None,
        };
        nodes
    ];
    let mut used: Vec<u32> = vec![0; v_count];
    // No arc carries flow yet; per volunteer, the (task, arc) it serves.
    for list in &mut arcs.of {
        for arc in list {
            arc.carries = false;
        }
    }
    let mut serves: Vec<Vec<(u32, u32)>> = vec![Vec::new(); v_count];
    let mut skipped: Vec<u8> = vec![0; t_count];
    // Dijkstra state, reset lazily by generation stamps.
    let mut generation: u32 = 0;
    // Entries below `nodes` are nodes; `nodes + t` is "the rest of task t's arcs".
    let mut heap = Queue {
        small: BinaryHeap::new(),
        large: BinaryHeap::new(),
    };
    let mut settled: Vec<usize> = Vec::new();

    // Per group of volunteers, an upper bound on their potentials (refreshed now and then);
    // a task's arcs not yet relaxed lead only to volunteers of its groups.
    let mut group_max: Vec<Cost> = vec![PI_MAX; net.groups];
    let mut set_max: Vec<Cost> = vec![PI_MAX; net.sets.len()];
    let pi_max = |set_max: &[Cost], task: usize| -> Cost {
        set_max
            .get(net.set_of_task[task] as usize)
            .copied()
            .unwrap_or(PI_MAX)
    };
    // Relaxes the arc x → y of cost c (reached `how`), in reduced costs.
    macro_rules! relax {
        ($x:expr, $y:expr, $c:expr, $how:expr) => {{
            let (x, y): (usize, usize) = ($x, $y);
            let (dx, px) = (node[x].dist, node[x].pi);
            let n = &mut node[y];
            if n.done != generation {
                let nd = dx + $c + px - n.pi;
                if n.stamp != generation || nd < n.dist {
                    n.stamp = generation;
                    n.dist = nd;
                    n.via = $how;
                    heap.push(nd, y);
                }
            }
        }};
    }
    // Relaxes the next few of task `task`'s arcs, and queues the rest behind a lower bound on
    // their reduced costs (fetched arcs: the next one's cost less the slack; arcs still to
    // fetch: the source's bound).
    macro_rules! relax_arcs {
        ($task:expr) => {{
            let task: usize = $task;
            let x = v_count + task;
            let len = arcs.of[task].len();
            let from = node[x].next_arc as usize;
            let to = (from + BATCH).min(len);
            for arc in from..to {
                let a = arcs.of[task][arc];
                if !a.carries {
                    #[allow(clippy::cast_possible_truncation)]
                    let how = Via::Forward {
                        task: task as u32,
                        arc: arc as u32,
                    };
                    relax!(x, a.volunteer as usize, Cost::from(a.cost), how);
                }
            }
            #[allow(clippy::cast_possible_truncation)]
            {
                node[x].next_arc = to as u32;
            }
            let bound = if to < len {
                Some(Cost::from(arcs.of[task][to].cost) - arcs.slack[task])
            } else {
                arcs.rest[task]
            };
            if let Some(bound) = bound {
                heap.push(
                    node[x].dist + bound + node[x].pi - pi_max(&set_max, task),
                    nodes + task,
                );
            }
        }};
    }
    // Fetches the next batch of `task`'s arcs.
    let mut fetch = |arcs: &mut Arcs, task: usize| {
        let (more, rest) = source.more(task, arcs.of[task].len());
        arcs.of[task].extend(more.into_iter().map(|(v, c)| Arc::new(v, c)));
        arcs.rest[task] = rest;
    };

    for t in 0..t_count {
        if t % REFRESH == 0 {
            // Potentials only fall: the highest of each group now bounds it from here on.
            group_max.iter_mut().for_each(|m| *m = Cost::MIN);
            for (v, n) in node[..v_count].iter().enumerate() {
                let g = &mut group_max[net.group_of[v] as usize];
                *g = (*g).max(n.pi);
            }
            for (m, set) in set_max.iter_mut().zip(net.sets) {
                *m = set
                    .iter()
                    .map(|&g| group_max[g])
                    .max()
                    .unwrap_or(PI_MAX)
                    .min(PI_MAX);
            }
        }
        let tn = v_count + t;
        if net.units[t] == 0 {
            continue;
        }
        if arcs.of[t].is_empty() && arcs.rest[t].is_some() {
            fetch(arcs, t);
        }
        // A new node: a potential that makes each of its arcs' reduced cost non-negative,
        // those still to come included.
        let mut p = node[sink].pi - net.skip[t];
        for a in &arcs.of[t] {
            p = p.max(node[a.volunteer as usize].pi - Cost::from(a.cost));
        }
        if let Some(rest) = arcs.rest[t] {
            p = p.max(pi_max(&set_max, t) - rest);
        }
        node[tn].pi = p;
        for _unit in 0..net.units[t] {
            generation = generation.wrapping_add(1);
            if generation == 0 {
                for n in &mut node {
                    n.stamp = 0;
                    n.done = 0;
                }
                generation = 1;
            }
            heap.clear();
            settled.clear();
            node[tn].dist = 0;
            node[tn].via = Via::None;
            node[tn].stamp = generation;
            heap.push(0, tn);
            while let Some((d, x)) = heap.pop() {
                if x >= nodes {
                    // The rest of a settled task's arcs: relax the next few, fetching more
                    // when all fetched ones are relaxed.
                    let task = x - nodes;
                    if node[v_count + task].next_arc as usize >= arcs.of[task].len() {
                        fetch(arcs, task);
                    }
                    relax_arcs!(task);
                    continue;
                }
                if node[x].done == generation || d > node[x].dist {
                    continue;
                }
                node[x].done = generation;
                settled.push(x);
                if x == sink {
                    break;
                }
                if x >= v_count {
                    let task = x - v_count;
                    node[x].next_arc = 0;
                    relax_arcs!(task);
                    #[allow(clippy::cast_possible_truncation)]
                    let how = Via::Skip { task: task as u32 };
                    relax!(x, sink, net.skip[task], how);
                } else {
                    let v = x;
                    for &(task, arc) in &serves[v] {
                        let c = Cost::from(arcs.of[task as usize][arc as usize].cost);
                        relax!(x, v_count + task as usize, -c, Via::Backward { task, arc });
                    }
                    if used[v] < net.capacity[v] {
                        #[allow(clippy::cast_possible_truncation)]
                        let how = Via::Load {
                            volunteer: v as u32,
                        };
                        relax!(x, sink, (net.marginal)(v, used[v]), how);
                    }
                }
            }
            // The sink is always reachable (every task may skip), so it was settled.
            let dt = node[sink].dist;
            for &x in &settled {
                let n = &mut node[x];
                if n.dist < dt {
                    n.pi += n.dist - dt;
                }
            }
            // Augment one unit along the path, from the sink back to the new unit's task.
            let mut at = sink;
            while at != tn {
                match node[at].via {
                    Via::Load { volunteer } => {
                        used[volunteer as usize] += 1;
                        at = volunteer as usize;
                    }
                    Via::Skip { task } => {
                        skipped[task as usize] += 1;
                        at = v_count + task as usize;
                    }
                    Via::Forward { task, arc } => {
                        let a = &mut arcs.of[task as usize][arc as usize];
                        a.carries = true;
                        serves[a.volunteer as usize].push((task, arc));
                        at = v_count + task as usize;
                    }
                    Via::Backward { task, arc } => {
                        let a = &mut arcs.of[task as usize][arc as usize];
                        a.carries = false;
                        let list = &mut serves[a.volunteer as usize];
                        if let Some(i) = list.iter().position(|e| *e == (task, arc)) {
                            list.swap_remove(i);
                        }
                        at = a.volunteer as usize;
                    }
                    Via::None => break,
                }
            }
        }
    }
    let mut cost: Cost = 0;
    let mut assigned = Vec::with_capacity(t_count);
    for ((of, &skips), &skip) in arcs.of.iter().zip(&skipped).zip(net.skip) {
        let mut vs = Vec::new();
        for a in of {
            if a.carries {
                vs.push(a.volunteer);
                cost = cost.saturating_add(Cost::from(a.cost));
            }
        }
        cost = cost.saturating_add(Cost::from(skips).saturating_mul(skip));
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
        cost,
    }
}
