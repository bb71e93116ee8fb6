//! Union-find over `0..n` with path halving; roots are always the smallest member, so a
//! set's root is its first element in index (e.g. raster or detection) order.

pub fn find(parent: &mut [usize], mut a: usize) -> usize {
    while parent[a] != a {
        parent[a] = parent[parent[a]];
        a = parent[a];
    }
    a
}

/// Joins two sets keeping the smaller index as the root, so roots are the first members.
pub fn join(parent: &mut [usize], a: usize, b: usize) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    if ra != rb {
        parent[ra.max(rb)] = ra.min(rb);
    }
}

/// Groups `0..n` by the union-find `parent`, groups ordered by their smallest member and
/// members ascending (networkx's `connected_components` order over ascending nodes).
pub fn groups(parent: &mut [usize]) -> Vec<Vec<usize>> {
    let n = parent.len();
    let mut slot = vec![usize::MAX; n];
    let mut out: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        let r = find(parent, i);
        if slot[r] == usize::MAX {
            slot[r] = out.len();
            out.push(Vec::new());
        }
        out[slot[r]].push(i);
    }
    out
}
