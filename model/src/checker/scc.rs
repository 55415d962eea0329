//! Strongly connected components, iteratively.
//!
//! Pearce's space-efficient variant of Tarjan's algorithm ("A space-efficient algorithm for
//! finding strongly connected components", 2016): one `u32` per node plus the DFS stack
//! (whose frames carry the root bit, which only nodes on the DFS path need).
//! petgraph's `TarjanScc` implements the same algorithm recursively, which overflows the
//! thread stack on the million-state graphs the checker builds; this version keeps its DFS
//! stack on the heap. Components come out in reverse topological order (a component is
//! reported after every component reachable from it).

/// Call `f` with each strongly connected component of the subgraph induced by the nodes
/// `0..n` for which `include` holds; `succ(v, i)` is the `i`-th successor of `v` (`None`
/// past the last).
pub fn for_each_scc(
    n: usize,
    succ: impl Fn(u32, usize) -> Option<u32>,
    include: impl Fn(u32) -> bool,
    mut f: impl FnMut(&[u32]),
) {
    // rindex: 0 = unvisited; 1.. = DFS index while on the stack; from `n` down = component id.
    // Whether a node is (still) the root of its component lives in its DFS frame: only the
    // nodes on the DFS path need it.
    let mut rindex = vec![0u32; n];
    let mut index = 1u32;
    let mut comp = u32::try_from(n)
        .expect("invariant: fewer than 2^32 nodes")
        .saturating_sub(1);
    let mut dfs: Vec<(u32, u32, bool)> = Vec::new();
    let mut stack: Vec<u32> = Vec::new();
    let mut members: Vec<u32> = Vec::new();
    for start in 0..n as u32 {
        if rindex[start as usize] != 0 || !include(start) {
            continue;
        }
        rindex[start as usize] = index;
        index += 1;
        dfs.push((start, 0, true));
        while let Some(&mut (v, ref mut i, ref mut root)) = dfs.last_mut() {
            let mut descended = false;
            while let Some(w) = succ(v, *i as usize) {
                if !include(w) {
                    *i += 1;
                    continue;
                }
                if rindex[w as usize] == 0 {
                    rindex[w as usize] = index;
                    index += 1;
                    dfs.push((w, 0, true));
                    descended = true;
                    break;
                }
                if rindex[w as usize] < rindex[v as usize] {
                    rindex[v as usize] = rindex[w as usize];
                    *root = false;
                }
                *i += 1;
            }
            if descended {
                continue;
            }
            let (_, _, is_root) = dfs.pop().expect("invariant: `v` is on the DFS path");
            if is_root {
                index -= 1;
                members.clear();
                members.push(v);
                while let Some(&w) = stack.last() {
                    if rindex[v as usize] > rindex[w as usize] {
                        break;
                    }
                    stack.pop();
                    rindex[w as usize] = comp;
                    index -= 1;
                    members.push(w);
                }
                rindex[v as usize] = comp;
                comp = comp.saturating_sub(1);
                f(&members);
            } else {
                stack.push(v);
            }
            // Back in the parent: finish the tree edge that led to `v`.
            if let Some(&mut (p, ref mut i, ref mut root)) = dfs.last_mut() {
                if rindex[v as usize] < rindex[p as usize] {
                    rindex[p as usize] = rindex[v as usize];
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
