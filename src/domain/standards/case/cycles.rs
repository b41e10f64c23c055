//! Cycles of `isChildOf` links. An item that is its own ancestor cannot be
//! placed anywhere, so such a package is refused with the items named.

/// Each cycle of `parents` (an item's parents by index) once, as its items
/// in link order, the smallest index first. Self-links are not cycles here:
/// the import refuses them where it reads the association.
pub(super) fn cycles(parents: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let n = parents.len();
    // Peel the items that cannot be on a cycle: those without children left
    // (nothing leads into them), then those without parents left.
    let mut alive = vec![true; n];
    let mut children_left = vec![0usize; n];
    for list in parents {
        for &p in list {
            children_left[p] += 1;
        }
    }
    let mut stack: Vec<usize> = (0..n).filter(|&i| children_left[i] == 0).collect();
    while let Some(i) = stack.pop() {
        alive[i] = false;
        for &p in &parents[i] {
            children_left[p] -= 1;
            if children_left[p] == 0 {
                stack.push(p);
            }
        }
    }
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut parents_left = vec![0usize; n];
    for (i, list) in parents.iter().enumerate() {
        for &p in list.iter().filter(|&&p| alive[i] && alive[p]) {
            children[p].push(i);
            parents_left[i] += 1;
        }
    }
    let mut stack: Vec<usize> = (0..n)
        .filter(|&i| alive[i] && parents_left[i] == 0)
        .collect();
    while let Some(i) = stack.pop() {
        alive[i] = false;
        for &c in &children[i] {
            parents_left[c] -= 1;
            if parents_left[c] == 0 && alive[c] {
                stack.push(c);
            }
        }
    }
    // What is left are the cycles and the items between them; its strongly
    // connected components (Kosaraju, with explicit stacks: a package may
    // nest deeper than the call stack allows) are the groups to name.
    let alive = &alive;
    let up = |i: usize| {
        parents[i]
            .iter()
            .copied()
            .filter(move |&p| alive[p] && p != i)
    };
    let mut finished = Vec::new();
    let mut seen = vec![false; n];
    for root in (0..n).filter(|&i| alive[i]) {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((i, next)) = stack.pop() {
            match up(i).nth(next) {
                Some(p) => {
                    stack.push((i, next + 1));
                    if !seen[p] {
                        seen[p] = true;
                        stack.push((p, 0));
                    }
                }
                None => finished.push(i),
            }
        }
    }
    let mut component = vec![usize::MAX; n];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for &root in finished.iter().rev() {
        if component[root] != usize::MAX {
            continue;
        }
        let id = groups.len();
        component[root] = id;
        let mut members = vec![root];
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            for &c in &children[i] {
                if component[c] == usize::MAX {
                    component[c] = id;
                    members.push(c);
                    stack.push(c);
                }
            }
        }
        groups.push(members);
    }
    let mut found: Vec<Vec<usize>> = groups
        .into_iter()
        .filter(|g| g.len() > 1)
        .map(|mut group| {
            group.sort_unstable();
            // A simple cycle is named in link order from its first item.
            let mut walk = vec![group[0]];
            while let Some(p) =
                up(walk[walk.len() - 1]).find(|&p| component[p] == component[group[0]])
            {
                if walk.contains(&p) {
                    break;
                }
                walk.push(p);
            }
            if walk.len() == group.len() {
                walk
            } else {
                group
            }
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::cycles;

    #[test]
    fn a_tree_has_none() {
        assert!(cycles(&[vec![], vec![0], vec![0], vec![1, 2]]).is_empty());
    }

    #[test]
    fn each_cycle_is_named_once_in_link_order() {
        // 1 -> 2 -> 1, and 3 -> 5 -> 4 -> 3, with 6 hanging under 3 and 0 a root.
        let parents = vec![
            vec![],
            vec![2],
            vec![1],
            vec![5],
            vec![3],
            vec![4],
            vec![3, 0],
        ];
        assert_eq!(cycles(&parents), [vec![1, 2], vec![3, 5, 4]]);
    }

    #[test]
    fn an_item_between_two_cycles_is_not_in_either() {
        // 0 <-> 1, 3 <-> 4, and 2 is a child of 1 and a parent of 3.
        let parents = vec![vec![1], vec![0], vec![1], vec![4, 2], vec![3]];
        assert_eq!(cycles(&parents), [vec![0, 1], vec![3, 4]]);
    }
}
