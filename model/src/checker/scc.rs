//! Strongly connected components, iteratively.
//!
//! Pearce's space-efficient variant of Tarjan's algorithm ("A space-efficient algorithm for
//! finding strongly connected components", 2016): one `u32` per node of the subgraph searched
//! (the included nodes, numbered densely; 3 bits per node of the whole graph for the
//! numbering) plus the DFS stack (whose frames carry the root bit, which only nodes on the
//! DFS path need).
//! petgraph's `TarjanScc` implements the same algorithm recursively, which overflows the
//! thread stack on the million-state graphs the checker builds; this version keeps its DFS
//! stack on the heap. Components come out in reverse topological order (a component is
//! reported after every component reachable from it).

use super::ranked::RankedBits;

/// Call `f` with each strongly connected component of the subgraph induced by the nodes
/// `0..n` for which `include` holds; `succ(v, i)` is the `i`-th successor of `v` (`None`
/// past the last).
pub fn for_each_scc(
    n: usize,
    succ: impl Fn(u32, usize) -> Option<u32>,
    include: impl Fn(u32) -> bool,
    mut f: impl FnMut(&[u32]),
) {
    // The included nodes, numbered densely: a bitmap, and the count of included nodes
    // before each 64-node word. The per-node index below then takes 4 bytes per included
    // node rather than per node (a fraction of them in the checker's searches).
    let dense = RankedBits::from_fn(n, |v| include(v as u32));
    let m = u32::try_from(dense.ones()).expect("invariant: fewer than 2^32 nodes");
    let included = |v: u32| dense.contains(v as usize);
    let at = |v: u32| dense.rank(v as usize);
    // rindex (by dense number): 0 = unvisited; 1.. = DFS index while on the stack; from `m`
    // down = component id. Whether a node is (still) the root of its component lives in its
    // DFS frame: only the nodes on the DFS path need it.
    let mut rindex = vec![0u32; m as usize];
    let mut index = 1u32;
    let mut comp = m.saturating_sub(1);
    let mut dfs: Vec<(u32, u32, bool)> = Vec::new();
    let mut stack: Vec<u32> = Vec::new();
    let mut members: Vec<u32> = Vec::new();
    for start in 0..u32::try_from(n).expect("invariant: fewer than 2^32 nodes") {
        if !included(start) || rindex[at(start)] != 0 {
            continue;
        }
        rindex[at(start)] = index;
        index += 1;
        dfs.push((start, 0, true));
        while let Some(&mut (v, ref mut i, ref mut root)) = dfs.last_mut() {
            let mut descended = false;
            while let Some(w) = succ(v, *i as usize) {
                if !included(w) {
                    *i += 1;
                    continue;
                }
                let (aw, av) = (at(w), at(v));
                if rindex[aw] == 0 {
                    rindex[aw] = index;
                    index += 1;
                    dfs.push((w, 0, true));
                    descended = true;
                    break;
                }
                if rindex[aw] < rindex[av] {
                    rindex[av] = rindex[aw];
                    *root = false;
                }
                *i += 1;
            }
            if descended {
                continue;
            }
            let (_, _, is_root) = dfs.pop().expect("invariant: `v` is on the DFS path");
            if is_root {
                let av = at(v);
                index -= 1;
                members.clear();
                members.push(v);
                while let Some(&w) = stack.last() {
                    if rindex[av] > rindex[at(w)] {
                        break;
                    }
                    stack.pop();
                    rindex[at(w)] = comp;
                    index -= 1;
                    members.push(w);
                }
                rindex[av] = comp;
                comp = comp.saturating_sub(1);
                f(&members);
            } else {
                stack.push(v);
            }
            // Back in the parent: finish the tree edge that led to `v`.
            if let Some(&mut (p, ref mut i, ref mut root)) = dfs.last_mut() {
                let (av, ap) = (at(v), at(p));
                if rindex[av] < rindex[ap] {
                    rindex[ap] = rindex[av];
                    *root = false;
                }
                *i += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sccs(adj: &[Vec<u32>], include: impl Fn(u32) -> bool) -> Vec<Vec<u32>> {
        let mut out = Vec::new();
        for_each_scc(
            adj.len(),
            |v, i| adj[v as usize].get(i).copied(),
            include,
            |c| {
                let mut c = c.to_vec();
                c.sort();
                out.push(c);
            },
        );
        out
    }

    #[test]
    fn finds_components_in_reverse_topological_order() {
        // 0 -> 1 <-> 2 -> 3 (self loop), 4 isolated, 5 -> 0
        let adj = vec![vec![1], vec![2], vec![1, 3], vec![3], vec![], vec![0]];
        let out = sccs(&adj, |_| true);
        assert_eq!(out, vec![vec![3], vec![1, 2], vec![0], vec![4], vec![5]]);
    }

    #[test]
    fn respects_the_node_filter() {
        let adj = vec![vec![1], vec![2], vec![0]];
        assert_eq!(sccs(&adj, |_| true), vec![vec![0, 1, 2]]);
        assert_eq!(sccs(&adj, |v| v != 2), vec![vec![1], vec![0]]);
    }

    /// The included nodes are numbered densely over 64-node words: a filter that leaves
    /// two interleaved cycles across five words finds them whole, and one that breaks a
    /// ring everywhere finds only single nodes.
    #[test]
    fn the_dense_numbering_spans_words() {
        let n = 300u32;
        let by_three: Vec<Vec<u32>> = (0..n).map(|v| vec![(v + 3) % n]).collect();
        let out = sccs(&by_three, |v| v % 3 != 0);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].len(), 100);
        assert_eq!(out[1].len(), 100);
        for c in &out {
            let r = c[0] % 3;
            assert!(c.iter().all(|&v| v % 3 == r && r != 0));
        }
        let ring: Vec<Vec<u32>> = (0..n).map(|v| vec![(v + 1) % n]).collect();
        let out = sccs(&ring, |v| v % 3 != 0);
        assert_eq!(out.len(), 200);
        assert!(out.iter().all(|c| c.len() == 1));
        assert_eq!(sccs(&ring, |_| true).len(), 1);
        assert!(sccs(&ring, |_| false).is_empty());
    }

    #[test]
    fn survives_a_deep_chain() {
        let n = 1_000_000u32;
        let adj: Vec<Vec<u32>> = (0..n)
            .map(|v| if v + 1 < n { vec![v + 1] } else { vec![0] })
            .collect();
        let mut count = 0;
        for_each_scc(
            adj.len(),
            |v, i| adj[v as usize].get(i).copied(),
            |_| true,
            |c| count += c.len(),
        );
        assert_eq!(count, n as usize);
    }
}
