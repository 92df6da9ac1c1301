//! Which captures of an enrolment series agree: the search the enrolment station runs
//! (`palmgate enrol`, `daemon/src/enrol/consistency.rs`) and the evaluation models
//! ([`crate::eval::protocol::EnrolmentRoles::station`]), one copy for both.

/// How the enrolment station decides that captures agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationRule {
    /// Every pair matches (the station as built).
    EveryPair,
    /// The matching pairs connect every capture (for three: two of the three pairs match).
    Connected,
}

impl StationRule {
    /// Whether the captures at `group`'s positions agree by this rule (`matches(i, j)`, `i < j`).
    fn agrees(self, group: &[usize], matches: &impl Fn(usize, usize) -> bool) -> bool {
        match self {
            StationRule::EveryPair => group
                .iter()
                .enumerate()
                .all(|(k, &i)| group[k + 1..].iter().all(|&j| matches(i, j))),
            StationRule::Connected => {
                let mut reached = vec![false; group.len()];
                let mut stack = vec![0];
                while let Some(k) = stack.pop() {
                    if std::mem::replace(&mut reached[k], true) {
                        continue;
                    }
                    let a = group[k];
                    for (l, &b) in group.iter().enumerate() {
                        if !reached[l] && l != k && matches(a.min(b), a.max(b)) {
                            stack.push(l);
                        }
                    }
                }
                reached.iter().all(|&r| r)
            }
        }
    }
}

/// The earliest `wanted` of `count` captures (positions `0..count`; combinations in
/// lexicographic order) that agree by `rule`, or `None` when no such set exists.
/// `matches(i, j)` (with `i < j`) says whether captures `i` and `j` match.
pub fn earliest_group(
    count: usize,
    wanted: usize,
    rule: StationRule,
    matches: impl Fn(usize, usize) -> bool,
) -> Option<Vec<usize>> {
    agreeing_groups(count, wanted, rule, matches).next()
}

/// Every `wanted` of `count` captures that agree by `rule`, in lexicographic order (the first is
/// [`earliest_group`]'s); none when `wanted` is 0 or above `count`.
pub fn agreeing_groups(
    count: usize,
    wanted: usize,
    rule: StationRule,
    matches: impl Fn(usize, usize) -> bool,
) -> impl Iterator<Item = Vec<usize>> {
    let first = (wanted > 0 && wanted <= count).then(|| (0..wanted).collect::<Vec<usize>>());
    std::iter::successors(first, move |group| {
        // The next combination in lexicographic order, or none.
        let last = (0..wanted).rev().find(|&k| group[k] < count - wanted + k)?;
        let mut next = group.clone();
        next[last] += 1;
        for k in last + 1..wanted {
            next[k] = next[k - 1] + 1;
        }
        Some(next)
    })
    .filter(move |group| rule.agrees(group, &matches))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agreeing_groups_come_in_order_and_the_earliest_is_the_first() {
        // Five captures: 0 matches nothing; 1, 2, 3 all match each other; 4 matches 2 and 3.
        let pairs = [(1, 2), (1, 3), (2, 3), (2, 4), (3, 4)];
        let matches = |i: usize, j: usize| pairs.contains(&(i, j));
        let every: Vec<Vec<usize>> =
            agreeing_groups(5, 3, StationRule::EveryPair, matches).collect();
        assert_eq!(every, [vec![1, 2, 3], vec![2, 3, 4]]);
        assert_eq!(
            earliest_group(5, 3, StationRule::EveryPair, matches),
            Some(vec![1, 2, 3])
        );
        let connected: Vec<Vec<usize>> =
            agreeing_groups(5, 3, StationRule::Connected, matches).collect();
        assert_eq!(
            connected,
            [vec![1, 2, 3], vec![1, 2, 4], vec![1, 3, 4], vec![2, 3, 4]]
        );
        assert_eq!(earliest_group(3, 3, StationRule::EveryPair, matches), None);
        assert_eq!(
            agreeing_groups(2, 3, StationRule::EveryPair, matches).count(),
            0
        );
        assert_eq!(
            agreeing_groups(5, 0, StationRule::EveryPair, matches).count(),
            0
        );
    }
}
