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
    if wanted == 0 || wanted > count {
        return None;
    }
    let mut group: Vec<usize> = (0..wanted).collect();
    loop {
        if rule.agrees(&group, &matches) {
            return Some(group);
        }
        // The next combination in lexicographic order, or none.
        let last = (0..wanted).rev().find(|&k| group[k] < count - wanted + k)?;
        group[last] += 1;
        for k in last + 1..wanted {
            group[k] = group[k - 1] + 1;
        }
    }
}
