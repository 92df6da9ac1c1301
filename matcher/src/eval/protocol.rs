//! The evaluation protocol that cannot fool itself.
//!
//! - Identities (never images) are split into `k` folds. Anything tuned — here the profile
//!   thresholds — is tuned on the other folds and measured on the held-out one; the figures
//!   reported are those of the held-out folds, pooled (a trial belongs to fold `f` when both of its
//!   identities do).
//! - 95 % confidence intervals by bootstrap over identities: identities are drawn with
//!   replacement; a genuine trial counts as often as its identity was drawn, an impostor trial as
//!   the product of its two identities' draws.
//! - Genuine trials are labelled same-session or cross-session when the set has sessions.
//! - Two scoring protocols: every unordered pair of images ([`all_pairs`]), and enrolment
//!   ([`enrolment`]): each identity's first usable captures are its enrolled templates, the others
//!   probes; a probe's distance to an identity is the minimum over that identity's templates, as
//!   the card computes it.

pub use crate::agreement::StationRule;
use crate::agreement::earliest_group;
use crate::synth::Rng;

/// Distances are Q16: `0..=65536`.
const BINS: usize = (1 << 16) + 1;

/// Whether a genuine trial's two captures come from the same session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPair {
    /// Same session.
    Same,
    /// Different sessions.
    Cross,
    /// The set carries no sessions (and impostor trials).
    Unknown,
}

/// One comparison decision: a probe of one identity against a reference of another (or the same).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trial {
    /// Identity of the probe.
    pub probe: u32,
    /// Identity of the reference.
    pub reference: u32,
    /// Distance, Q16.
    pub distance: u32,
    /// Sessions of a genuine trial.
    pub sessions: SessionPair,
}

/// Genuine and impostor trials over `identities` identities.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trials {
    /// Identities the trials' indices refer to.
    pub identities: usize,
    /// Genuine trials (`probe == reference`).
    pub genuine: Vec<Trial>,
    /// Impostor trials.
    pub impostor: Vec<Trial>,
}

impl Trials {
    /// The trials whose identities are all kept.
    pub fn within(&self, keep: impl Fn(u32) -> bool) -> Trials {
        let both = |t: &&Trial| keep(t.probe) && keep(t.reference);
        Trials {
            identities: self.identities,
            genuine: self.genuine.iter().filter(both).copied().collect(),
            impostor: self.impostor.iter().filter(both).copied().collect(),
        }
    }

    /// Leaves out the impostor trials between the two identities of each pair of `same_hand` (one
    /// hand filed under two names in a data set: its captures are neither genuine nor impostor
    /// trials of each other) and returns how many were left out.
    pub fn leave_out_same_hands(&mut self, same_hand: &[[u32; 2]]) -> usize {
        let before = self.impostor.len();
        self.impostor.retain(|t| {
            !same_hand
                .iter()
                .any(|&[a, b]| (t.probe, t.reference) == (a, b) || (t.probe, t.reference) == (b, a))
        });
        before - self.impostor.len()
    }

    /// The same trials with only the genuine ones of the given sessions.
    pub fn with_genuine_sessions(&self, sessions: SessionPair) -> Trials {
        Trials {
            identities: self.identities,
            genuine: self
                .genuine
                .iter()
                .filter(|t| t.sessions == sessions)
                .copied()
                .collect(),
            impostor: self.impostor.clone(),
        }
    }

    /// Unit-weight histogram.
    pub fn histogram(&self) -> Histogram {
        self.weighted_histogram(&vec![1; self.identities])
    }

    /// Histogram with identity `i` drawn `counts[i]` times.
    pub fn weighted_histogram(&self, counts: &[u64]) -> Histogram {
        let mut h = Histogram::new();
        let weight = |i: u32| counts.get(i as usize).copied().unwrap_or(0);
        for t in &self.genuine {
            h.genuine[bin(t.distance)] += weight(t.probe);
        }
        for t in &self.impostor {
            h.impostor[bin(t.distance)] += weight(t.probe) * weight(t.reference);
        }
        h.genuine_total = h.genuine.iter().sum();
        h.impostor_total = h.impostor.iter().sum();
        h
    }
}

fn bin(distance: u32) -> usize {
    (distance as usize).min(BINS - 1)
}

/// Weighted counts of genuine and impostor distances per Q16 value.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    genuine: Vec<u64>,
    impostor: Vec<u64>,
    genuine_total: u64,
    impostor_total: u64,
}

impl Histogram {
    fn new() -> Histogram {
        Histogram {
            genuine: vec![0; BINS],
            impostor: vec![0; BINS],
            genuine_total: 0,
            impostor_total: 0,
        }
    }

    /// `(fmr, fnmr)` at every threshold `0..=65536` (match when distance ≤ threshold).
    fn rates(&self) -> impl Iterator<Item = (u32, f64, f64)> + '_ {
        let (g, i) = (
            self.genuine_total.max(1) as f64,
            self.impostor_total.max(1) as f64,
        );
        let mut accepted_genuine = 0u64;
        let mut accepted_impostor = 0u64;
        (0..BINS).map(move |t| {
            accepted_genuine += self.genuine[t];
            accepted_impostor += self.impostor[t];
            (
                t as u32,
                accepted_impostor as f64 / i,
                (self.genuine_total - accepted_genuine) as f64 / g,
            )
        })
    }

    /// Impostor trials counted (weighted).
    pub fn impostors(&self) -> u64 {
        self.impostor_total
    }

    /// Equal error rate: the mean of FMR and FNMR where they are closest (1.0 when empty).
    pub fn eer(&self) -> f64 {
        if self.genuine_total == 0 || self.impostor_total == 0 {
            return 1.0;
        }
        let mut best = (f64::INFINITY, 1.0);
        for (_, fmr, fnmr) in self.rates() {
            let gap = (fmr - fnmr).abs();
            if gap < best.0 {
                best = (gap, (fmr + fnmr) / 2.0);
            }
        }
        best.1
    }

    /// The largest threshold whose FMR is at most `target` (`None` without impostors).
    pub fn threshold_at_fmr(&self, target: f64) -> Option<u32> {
        if self.impostor_total == 0 {
            return None;
        }
        let allowed = target * self.impostor_total as f64;
        let mut accepted = 0u64;
        for t in 0..BINS {
            accepted += self.impostor[t];
            if accepted as f64 > allowed {
                return Some((t as u32).saturating_sub(1));
            }
        }
        Some(u32::MAX)
    }

    /// False matches (impostors at or below `threshold`) and impostors.
    pub fn false_matches(&self, threshold: u32) -> (u64, u64) {
        let end = (threshold as usize).min(BINS - 1);
        (self.impostor[..=end].iter().sum(), self.impostor_total)
    }

    /// False non-matches (genuine above `threshold`) and genuine trials.
    pub fn false_non_matches(&self, threshold: u32) -> (u64, u64) {
        let end = (threshold as usize).min(BINS - 1);
        let accepted: u64 = self.genuine[..=end].iter().sum();
        (self.genuine_total - accepted, self.genuine_total)
    }

    /// FNMR at [`Histogram::threshold_at_fmr`] (1.0 without impostors).
    pub fn fnmr_at_fmr(&self, target: f64) -> f64 {
        match self.threshold_at_fmr(target) {
            None => 1.0,
            Some(t) => {
                let (missed, total) = self.false_non_matches(t);
                ratio(missed, total)
            }
        }
    }

    /// The headline figures.
    pub fn figures(&self) -> Figures {
        Figures {
            eer: self.eer(),
            fnmr_at_fmr: FMR_TARGETS.map(|t| self.fnmr_at_fmr(t)),
        }
    }
}

fn ratio(count: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

/// The FMR targets of [`Figures::fnmr_at_fmr`].
pub const FMR_TARGETS: [f64; 3] = [1e-2, 1e-3, 1e-4];

/// EER and FNMR at the FMR targets.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Figures {
    /// Equal error rate.
    pub eer: f64,
    /// FNMR at FMR ≤ 1e-2, 1e-3, 1e-4.
    pub fnmr_at_fmr: [f64; 3],
}

/// Figures with their 95 % bootstrap confidence intervals.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FiguresCi {
    /// Genuine trials.
    pub genuine: usize,
    /// Impostor trials.
    pub impostor: usize,
    /// Point estimates.
    pub figures: Figures,
    /// 2.5 % and 97.5 % percentiles of the EER over the bootstrap replicates.
    pub eer_ci95: [f64; 2],
    /// The same for FNMR at FMR ≤ 1e-2, 1e-3, 1e-4.
    pub fnmr_at_fmr_ci95: [[f64; 2]; 3],
}

/// Bootstrap replicates behind every interval.
pub const BOOTSTRAP_REPLICATES: usize = 200;

/// Figures of `trials` and their 95 % intervals by bootstrap over identities (`replicates`
/// replicates, deterministic for a `seed`, spread over `threads`; draws that hold no genuine or no
/// impostor trial are left out).
pub fn with_confidence(trials: &Trials, replicates: usize, seed: u64, threads: usize) -> FiguresCi {
    let figures = trials.histogram().figures();
    // Only identities that take part in a trial are drawn.
    let mut present = vec![false; trials.identities];
    for t in trials.genuine.iter().chain(&trials.impostor) {
        for i in [t.probe, t.reference] {
            if let Some(p) = present.get_mut(i as usize) {
                *p = true;
            }
        }
    }
    let members: Vec<usize> = (0..trials.identities).filter(|&i| present[i]).collect();
    let threads = threads.clamp(1, replicates.max(1));
    let mut replicate_figures: Vec<Figures> = Vec::with_capacity(replicates);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|worker| {
                let members = &members;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for r in (worker..replicates).step_by(threads) {
                        let mut rng =
                            Rng::new(seed ^ (r as u64).wrapping_mul(0xA24B_AED4_963E_E407));
                        let mut counts = vec![0u64; trials.identities];
                        for _ in 0..members.len() {
                            let pick = (rng.next_u64() % members.len() as u64) as usize;
                            counts[members[pick]] += 1;
                        }
                        let h = trials.weighted_histogram(&counts);
                        // A draw without a genuine or an impostor trial measures nothing.
                        if h.genuine_total > 0 && h.impostor_total > 0 {
                            out.push(h.figures());
                        }
                    }
                    out
                })
            })
            .collect();
        for handle in handles {
            if let Ok(part) = handle.join() {
                replicate_figures.extend(part);
            }
        }
    });
    let interval = |mut values: Vec<f64>| -> [f64; 2] {
        values.sort_by(f64::total_cmp);
        if values.is_empty() {
            return [f64::NAN, f64::NAN];
        }
        let at = |q: f64| {
            values[((q * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)]
        };
        [at(0.025), at(0.975)]
    };
    FiguresCi {
        genuine: trials.genuine.len(),
        impostor: trials.impostor.len(),
        figures,
        eer_ci95: interval(replicate_figures.iter().map(|f| f.eer).collect()),
        fnmr_at_fmr_ci95: [0, 1, 2]
            .map(|k| interval(replicate_figures.iter().map(|f| f.fnmr_at_fmr[k]).collect())),
    }
}

/// Fold of every identity: a seeded shuffle, then round robin, so folds differ in size by at
/// most one and do not follow the folder names.
pub fn folds(identities: usize, k: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..identities).collect();
    let mut rng = Rng::new(seed);
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let mut fold = vec![0; identities];
    for (position, &identity) in order.iter().enumerate() {
        fold[identity] = position % k.max(1);
    }
    fold
}

/// The trials of the held-out folds, pooled: those whose identities share a fold.
pub fn validation_trials(trials: &Trials, fold: &[usize], k: usize) -> Trials {
    let mut pooled = Trials {
        identities: trials.identities,
        ..Trials::default()
    };
    for f in 0..k {
        let part = trials.within(|i| fold.get(i as usize) == Some(&f));
        pooled.genuine.extend(part.genuine);
        pooled.impostor.extend(part.impostor);
    }
    pooled
}

/// A captured sample as the protocols see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleKey {
    /// Identity index.
    pub identity: u32,
    /// Session label, when the set has sessions.
    pub session: Option<String>,
}

fn session_pair(a: &SampleKey, b: &SampleKey) -> SessionPair {
    match (&a.session, &b.session) {
        (Some(x), Some(y)) if x == y => SessionPair::Same,
        (Some(_), Some(_)) => SessionPair::Cross,
        _ => SessionPair::Unknown,
    }
}

/// Every unordered pair of usable samples. `distance(i, j)` for `i < j` indexes `samples`.
pub fn all_pairs(
    identities: usize,
    samples: &[SampleKey],
    distance: impl Fn(usize, usize) -> u32,
) -> Trials {
    let mut trials = Trials {
        identities,
        ..Trials::default()
    };
    for i in 0..samples.len() {
        for j in i + 1..samples.len() {
            let (a, b) = (&samples[i], &samples[j]);
            let trial = Trial {
                probe: a.identity,
                reference: b.identity,
                distance: distance(i, j),
                sessions: SessionPair::Unknown,
            };
            if a.identity == b.identity {
                trials.genuine.push(Trial {
                    sessions: session_pair(a, b),
                    ..trial
                });
            } else {
                trials.impostor.push(trial);
            }
        }
    }
    trials
}

/// Which samples the enrolment protocol ([`enrolment`]) enrols and which it presents, by index
/// into its `samples`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentRoles {
    /// Per identity, its references: its first `enrolled` samples (none when it has fewer).
    pub references: Vec<Vec<usize>>,
    /// Per identity, its genuine probes: its samples after the first `probes_after` (at least
    /// `enrolled`). Every sample is an impostor probe for the other identities.
    pub probes: Vec<Vec<usize>>,
    /// Identities the enrolment station refused ([`EnrolmentRoles::station`]): they have no
    /// references and no genuine probes.
    pub refused: Vec<usize>,
}

/// Which of a hand's samples are its genuine probes once the station has enrolled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StationProbes {
    /// The samples after the last one the station took, as at a gate: the captures it passed
    /// over were presented at the station.
    AfterTaken,
    /// Every sample it did not enrol, the captures it passed over included.
    NotEnrolled,
}

/// Per identity, the indices of its samples in `samples` order.
pub fn per_identity(identities: usize, samples: &[SampleKey]) -> Vec<Vec<usize>> {
    let mut per_identity: Vec<Vec<usize>> = vec![Vec::new(); identities];
    for (index, s) in samples.iter().enumerate() {
        if let Some(list) = per_identity.get_mut(s.identity as usize) {
            list.push(index);
        }
    }
    per_identity
}

impl EnrolmentRoles {
    /// The roles of `samples` for `enrolled` references and probes after the first
    /// `probes_after` samples of each of the `identities`.
    pub fn new(
        identities: usize,
        samples: &[SampleKey],
        enrolled: usize,
        probes_after: usize,
    ) -> EnrolmentRoles {
        let enrolled = enrolled.max(1);
        let per_identity = per_identity(identities, samples);
        EnrolmentRoles {
            references: per_identity
                .iter()
                .map(|list| {
                    list.get(..enrolled)
                        .map(<[usize]>::to_vec)
                        .unwrap_or_default()
                })
                .collect(),
            probes: per_identity
                .iter()
                .map(|list| {
                    list.iter()
                        .skip(probes_after.max(enrolled))
                        .copied()
                        .collect()
                })
                .collect(),
            refused: Vec::new(),
        }
    }

    /// The roles the enrolment station gives (`palmgate enrol --extra-captures`,
    /// docs/operations.md): each identity presents its first `enrolled` samples; while no
    /// `enrolled` of those presented agree by `rule` (`matches(a, b)` on pairs, `a` before `b`),
    /// it presents one more, up to `extra` more; the earliest such group (in the order of the
    /// samples) is enrolled. An identity with
    /// no such group among the samples it has is refused (no references, listed in
    /// [`EnrolmentRoles::refused`]). Its genuine probes are the samples after the last one the
    /// station took, or, with `probes: StationProbes::NotEnrolled`, every sample it did not
    /// enrol (the captures the station passed over included).
    pub fn station(
        identities: usize,
        samples: &[SampleKey],
        enrolled: usize,
        extra: usize,
        rule: StationRule,
        probes: StationProbes,
        matches: impl Fn(usize, usize) -> bool,
    ) -> EnrolmentRoles {
        let enrolled = enrolled.max(1);
        let per_identity = per_identity(identities, samples);
        let mut roles = EnrolmentRoles {
            references: vec![Vec::new(); identities],
            probes: vec![Vec::new(); identities],
            refused: Vec::new(),
        };
        for (identity, list) in per_identity.iter().enumerate() {
            if list.len() < enrolled {
                continue;
            }
            let presented = (enrolled..=(enrolled + extra).min(list.len())).find_map(|taken| {
                let group =
                    earliest_group(taken, enrolled, rule, |i, j| matches(list[i], list[j]))?;
                Some((
                    taken,
                    group.into_iter().map(|i| list[i]).collect::<Vec<_>>(),
                ))
            });
            let Some((taken, group)) = presented else {
                roles.refused.push(identity);
                continue;
            };
            roles.probes[identity] = match probes {
                StationProbes::AfterTaken => list[taken..].to_vec(),
                StationProbes::NotEnrolled => list
                    .iter()
                    .filter(|s| !group.contains(s))
                    .copied()
                    .collect(),
            };
            roles.references[identity] = group;
        }
        roles
    }
}

/// Enrolment protocol: per identity, its first `enrolled` usable samples (in `samples` order) are
/// the references and the samples after the first `probes_after` usable ones are its genuine
/// probes (pass the same `probes_after` to compare several `enrolled` on the same probes). Every
/// sample, enrolled ones included, is an impostor probe against every other identity's
/// references: an impostor at a gate is any capture of another hand, and the false-match rates
/// this protocol calibrates need every impostor trial the data holds. A probe's distance to an
/// identity is the minimum over that identity's references; identities with fewer than
/// `enrolled` usable samples are not enrolled. `distance(reference, probe)` takes the reference
/// first, whichever sample came first: on a card the probe is the one cut at every pose, also
/// when an impostor's references were captured after it.
pub fn enrolment(
    identities: usize,
    samples: &[SampleKey],
    enrolled: usize,
    probes_after: usize,
    distance: impl Fn(usize, usize) -> u32,
) -> Trials {
    let roles = EnrolmentRoles::new(identities, samples, enrolled, probes_after);
    enrolment_with_roles(identities, samples, &roles, distance)
}

/// [`enrolment`] with the references and probes given (for example the station's,
/// [`EnrolmentRoles::station`]).
pub fn enrolment_with_roles(
    identities: usize,
    samples: &[SampleKey],
    roles: &EnrolmentRoles,
    distance: impl Fn(usize, usize) -> u32,
) -> Trials {
    let mut trials = Trials {
        identities,
        ..Trials::default()
    };
    let closest = |refs: &[usize], probe: usize| {
        refs.iter()
            .map(|&r| distance(r, probe))
            .min()
            .unwrap_or(u32::MAX)
    };
    for (identity, (refs, probes)) in roles.references.iter().zip(&roles.probes).enumerate() {
        if refs.is_empty() {
            continue;
        }
        for &probe in probes {
            let p = &samples[probe];
            // A probe is cross-session only if it shares a session with none of the references.
            let pairs: Vec<SessionPair> =
                refs.iter().map(|&r| session_pair(p, &samples[r])).collect();
            let sessions = if pairs.contains(&SessionPair::Unknown) {
                SessionPair::Unknown
            } else if pairs.contains(&SessionPair::Same) {
                SessionPair::Same
            } else {
                SessionPair::Cross
            };
            trials.genuine.push(Trial {
                probe: p.identity,
                reference: identity as u32,
                distance: closest(refs, probe),
                sessions,
            });
        }
    }
    for (probe, p) in samples.iter().enumerate() {
        for (identity, refs) in roles.references.iter().enumerate() {
            if refs.is_empty() || identity == p.identity as usize {
                continue;
            }
            trials.impostor.push(Trial {
                probe: p.identity,
                reference: identity as u32,
                distance: closest(refs, probe),
                sessions: SessionPair::Unknown,
            });
        }
    }
    trials
}

/// One profile threshold's outcome on one set's held-out folds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProfileOutcome {
    /// Profile name.
    pub profile: String,
    /// Its target FMR.
    pub target_fmr: f64,
    /// Folds for which a threshold could be calibrated (the others count nothing: no tuning set
    /// was large enough for the target).
    pub calibrated_folds: usize,
    /// Impostor trials accepted, summed over the held-out folds.
    pub false_matches: u64,
    /// Impostor trials.
    pub impostors: u64,
    /// Genuine trials refused.
    pub false_non_matches: u64,
    /// Genuine trials.
    pub genuine: u64,
    /// `false_matches / impostors`.
    pub fmr: f64,
    /// `false_non_matches / genuine`.
    pub fnmr: f64,
}

/// The threshold at `target` calibrated on several sets: the largest threshold at which each set
/// large enough to measure the target (at least `1 / target` impostor trials) stays at or below
/// it. `None` when no set is large enough.
pub fn calibrate(sets: &[Histogram], target: f64) -> Option<u32> {
    calibrate_bound(sets, target).map(|(_, threshold)| threshold)
}

/// [`calibrate`], with the index of the set that bound the threshold (the first of equals): the
/// one whose impostor tail decided it, which a reviewer needs to see — a set with barely
/// `1 / target` trials decides on one or two of them.
pub fn calibrate_bound(sets: &[Histogram], target: f64) -> Option<(usize, u32)> {
    sets.iter()
        .enumerate()
        .filter(|(_, h)| h.impostor_total as f64 * target >= 1.0)
        .filter_map(|(i, h)| h.threshold_at_fmr(target).map(|t| (i, t)))
        .min_by_key(|&(_, threshold)| threshold)
}

/// K-fold validation of a calibration: for each fold `f`, thresholds at each target are
/// calibrated on every set's trials outside `f` (pooled over the sets) and applied to each set's
/// trials inside `f`; the counts are summed over the folds. Returns, per set, one outcome per
/// `(name, target)`.
pub fn validate_calibration(
    sets: &[(&Trials, &[usize])],
    k: usize,
    targets: &[(&str, f64)],
) -> Vec<Vec<ProfileOutcome>> {
    let measured: Vec<Vec<&Trials>> = sets
        .iter()
        .map(|(trials, _)| vec![*trials; targets.len()])
        .collect();
    validate_calibration_on(sets, &measured, k, targets)
}

/// [`validate_calibration`], the thresholds calibrated on `sets`' tuning folds but applied to the
/// held-out folds of other trials of the same identities: `measured[set][target]` (for example
/// enrolment as the station chooses it under that target's profile).
pub fn validate_calibration_on(
    sets: &[(&Trials, &[usize])],
    measured: &[Vec<&Trials>],
    k: usize,
    targets: &[(&str, f64)],
) -> Vec<Vec<ProfileOutcome>> {
    let mut outcomes: Vec<Vec<ProfileOutcome>> = sets
        .iter()
        .map(|_| {
            targets
                .iter()
                .map(|&(name, target)| ProfileOutcome {
                    profile: name.to_owned(),
                    target_fmr: target,
                    calibrated_folds: 0,
                    false_matches: 0,
                    impostors: 0,
                    false_non_matches: 0,
                    genuine: 0,
                    fmr: 0.0,
                    fnmr: 0.0,
                })
                .collect()
        })
        .collect();
    for f in 0..k {
        let tuning: Vec<Histogram> = sets
            .iter()
            .map(|(trials, fold)| {
                trials
                    .within(|i| fold.get(i as usize) != Some(&f))
                    .histogram()
            })
            .collect();
        for (t, &(_, target)) in targets.iter().enumerate() {
            let Some(threshold) = calibrate(&tuning, target) else {
                continue;
            };
            let held_out = sets.iter().zip(measured).map(|((_, fold), trials)| {
                trials.get(t).map_or_else(Histogram::new, |trials| {
                    trials
                        .within(|i| fold.get(i as usize) == Some(&f))
                        .histogram()
                })
            });
            for (s, h) in held_out.enumerate() {
                let (fm, imp) = h.false_matches(threshold);
                let (fnm, genuine) = h.false_non_matches(threshold);
                let o = &mut outcomes[s][t];
                o.calibrated_folds += 1;
                o.false_matches += fm;
                o.impostors += imp;
                o.false_non_matches += fnm;
                o.genuine += genuine;
            }
        }
    }
    for o in outcomes.iter_mut().flatten() {
        o.fmr = ratio(o.false_matches, o.impostors);
        o.fnmr = ratio(o.false_non_matches, o.genuine);
    }
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Scores;

    fn key(identity: u32, session: Option<&str>) -> SampleKey {
        SampleKey {
            identity,
            session: session.map(str::to_owned),
        }
    }

    #[test]
    fn a_hand_under_two_names_leaves_its_impostor_trials_both_ways_and_nothing_else() {
        let mut trials = trials_from(
            &[(1, 10), (2, 11)],
            &[
                (1, 2, 5),
                (2, 1, 6),
                (1, 3, 7),
                (3, 2, 8),
                (0, 1, 9),
                (2, 1, 4),
            ],
        );
        assert_eq!(trials.leave_out_same_hands(&[]), 0);
        assert_eq!(trials.impostor.len(), 6);
        assert_eq!(trials.leave_out_same_hands(&[[2, 1]]), 3);
        let kept: Vec<(u32, u32)> = trials
            .impostor
            .iter()
            .map(|t| (t.probe, t.reference))
            .collect();
        assert_eq!(kept, [(1, 3), (3, 2), (0, 1)]);
        assert_eq!(trials.genuine.len(), 2, "genuine trials are not touched");
        assert_eq!(trials.leave_out_same_hands(&[[0, 3], [1, 2]]), 0);
    }

    fn trials_from(genuine: &[(u32, u32)], impostor: &[(u32, u32, u32)]) -> Trials {
        Trials {
            identities: 4,
            genuine: genuine
                .iter()
                .map(|&(id, d)| Trial {
                    probe: id,
                    reference: id,
                    distance: d,
                    sessions: SessionPair::Unknown,
                })
                .collect(),
            impostor: impostor
                .iter()
                .map(|&(a, b, d)| Trial {
                    probe: a,
                    reference: b,
                    distance: d,
                    sessions: SessionPair::Unknown,
                })
                .collect(),
        }
    }

    #[test]
    fn histogram_figures_equal_the_sorted_score_figures() {
        // Distinct scores, interleaved: genuine 100..=109, impostor 105..=204.
        let genuine: Vec<(u32, u32)> = (100..110).map(|d| (d % 4, d)).collect();
        let impostor: Vec<(u32, u32, u32)> = (105..205).map(|d| (d % 4, (d + 1) % 4, d)).collect();
        let h = trials_from(&genuine, &impostor).histogram();
        let s = Scores::new(
            genuine.iter().map(|g| g.1).collect(),
            impostor.iter().map(|i| i.2).collect(),
        );
        assert!(
            (h.eer() - s.eer()).abs() < 1e-12,
            "{} vs {}",
            h.eer(),
            s.eer()
        );
        for target in FMR_TARGETS {
            assert_eq!(h.threshold_at_fmr(target), s.threshold_at_fmr(target));
            assert!((h.fnmr_at_fmr(target) - s.fnmr_at_fmr(target)).abs() < 1e-12);
        }
        assert_eq!(h.false_matches(105), (1, 100));
        assert_eq!(h.false_non_matches(104), (5, 10));
    }

    #[test]
    fn the_station_enrols_the_earliest_agreeing_captures_and_refuses_a_hand_with_none() {
        // Identity 0: captures 0..6, capture 1 agrees with nothing (1, 2 extras: 0, 2, 3 enrolled
        // after one extra). Identity 1: captures 6..11, 6, 7 and 8 agree with nothing, so no
        // three agree among its five: refused. Identity 2: captures 11..15, the first three agree.
        // Identity 3: two captures, not enrolled.
        let identity_of = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3];
        let samples: Vec<SampleKey> = identity_of.iter().map(|&i| key(i, None)).collect();
        let strangers = [1usize, 6, 7, 8];
        let matches = |a: usize, b: usize| {
            identity_of[a] == identity_of[b] && !strangers.contains(&a) && !strangers.contains(&b)
        };
        let after = EnrolmentRoles::station(
            4,
            &samples,
            3,
            2,
            StationRule::EveryPair,
            StationProbes::AfterTaken,
            matches,
        );
        assert_eq!(
            after.references,
            [vec![0, 2, 3], vec![], vec![11, 12, 13], vec![]]
        );
        assert_eq!(after.probes, [vec![4, 5], vec![], vec![14], vec![]]);
        assert_eq!(after.refused, [1]);
        let every = EnrolmentRoles::station(
            4,
            &samples,
            3,
            2,
            StationRule::EveryPair,
            StationProbes::NotEnrolled,
            matches,
        );
        assert_eq!(every.references, after.references);
        assert_eq!(every.probes, [vec![1, 4, 5], vec![], vec![14], vec![]]);
        // No extra capture: identity 0 is refused too, as the station with `--extra-captures 0`.
        let strict = EnrolmentRoles::station(
            4,
            &samples,
            3,
            0,
            StationRule::EveryPair,
            StationProbes::AfterTaken,
            matches,
        );
        assert_eq!(strict.refused, [0, 1]);
        assert_eq!(strict.references[2], [11, 12, 13]);
        // The trials follow the roles: a refused hand is no impostor reference either.
        let trials = enrolment_with_roles(4, &samples, &after, |r, p| (r * 100 + p) as u32);
        assert_eq!(trials.genuine.len(), 3);
        assert!(
            trials
                .impostor
                .iter()
                .all(|t| t.reference == 0 || t.reference == 2)
        );
        assert_eq!(trials.impostor.len(), samples.len() - 6 + samples.len() - 4);
    }

    #[test]
    fn weights_count_impostor_pairs_by_the_product_of_draws() {
        let trials = trials_from(&[(0, 10), (1, 20)], &[(0, 1, 30), (1, 2, 40)]);
        let h = trials.weighted_histogram(&[2, 3, 0, 0]);
        assert_eq!((h.genuine_total, h.impostor_total), (5, 6));
        assert_eq!(h.false_matches(30), (6, 6));
        assert_eq!(h.false_non_matches(10), (3, 5));
    }

    #[test]
    fn bootstrap_interval_contains_the_estimate_and_is_reproducible() {
        // 12 identities, overlapping genuine and impostor distances.
        let mut genuine = Vec::new();
        let mut impostor = Vec::new();
        for id in 0..12u32 {
            genuine.push((id, 20_000 + id * 700));
            genuine.push((id, 18_000 + id * 500));
            for other in id + 1..12 {
                impostor.push((id, other, 24_000 + (id * 37 + other * 91) % 6_000));
            }
        }
        let mut trials = trials_from(&genuine, &impostor);
        trials.identities = 12;
        let a = with_confidence(&trials, 100, 7, 2);
        let b = with_confidence(&trials, 100, 7, 1);
        assert_eq!(a, b, "same seed, any thread count, same intervals");
        assert!(
            a.eer_ci95[0] <= a.figures.eer && a.figures.eer <= a.eer_ci95[1],
            "{a:?}"
        );
        assert!(
            a.eer_ci95[1] > a.eer_ci95[0],
            "identities vary, so must the EER: {a:?}"
        );
    }

    #[test]
    fn folds_are_balanced_identity_disjoint_and_seeded() {
        let f = folds(23, 5, 1);
        for k in 0..5 {
            let n = f.iter().filter(|&&x| x == k).count();
            assert!(n == 4 || n == 5, "fold {k} has {n}");
        }
        assert_eq!(f, folds(23, 5, 1));
        assert_ne!(f, folds(23, 5, 2));
        assert_ne!(f, (0..23).map(|i| i % 5).collect::<Vec<_>>(), "shuffled");
        let trials = trials_from(&[(0, 1), (1, 1)], &[(0, 1, 5), (0, 2, 5), (1, 3, 5)]);
        let v = validation_trials(&trials, &[0, 0, 1, 1], 2);
        assert_eq!(v.genuine.len(), 2);
        assert_eq!(v.impostor.len(), 1, "only the pair inside fold 0 stays");
    }

    #[test]
    fn all_pairs_labels_sessions_and_enrolment_takes_the_minimum() {
        let samples = [
            key(0, Some("1")),
            key(0, Some("1")),
            key(0, Some("2")),
            key(1, Some("1")),
            key(1, Some("2")),
        ];
        // Distance = 1000·i + j, so every pair is recognisable.
        let d = |i: usize, j: usize| (1000 * i + j) as u32;
        let all = all_pairs(2, &samples, d);
        assert_eq!((all.genuine.len(), all.impostor.len()), (4, 6));
        let cross: Vec<u32> = all
            .genuine
            .iter()
            .filter(|t| t.sessions == SessionPair::Cross)
            .map(|t| t.distance)
            .collect();
        assert_eq!(cross, vec![2, 1002, 3004]);

        // Two references per identity, probes after the second sample: 0's probe is sample 2,
        // 1 has no probe (only two samples).
        let e = enrolment(2, &samples, 2, 2, d);
        assert_eq!(e.genuine.len(), 1);
        assert_eq!(
            e.genuine[0].distance, 2,
            "min(d(0,2), d(1,2)) = min(2, 1002)"
        );
        assert_eq!(e.genuine[0].sessions, SessionPair::Cross);
        // Every sample is an impostor probe against the other identity's references, enrolled
        // captures and captures without a probe role included.
        let impostors: Vec<(u32, u32, u32)> = e
            .impostor
            .iter()
            .map(|t| (t.probe, t.reference, t.distance))
            .collect();
        assert_eq!(
            impostors,
            vec![
                (0, 1, 3000), // min(d(3,0), d(4,0)): identity 0's first reference as a probe
                (0, 1, 3001),
                (0, 1, 3002), // the references come after the probe and are still references
                (1, 0, 3),    // min(d(0,3), d(1,3)): identity 1's enrolled capture as a probe
                (1, 0, 4),
            ]
        );
        // One reference, same probes: the distance is to the first sample only.
        let one = enrolment(2, &samples, 1, 2, d);
        assert_eq!(one.genuine[0].distance, 2);
        let one_impostors: Vec<u32> = one.impostor.iter().map(|t| t.distance).collect();
        assert_eq!(one_impostors, vec![3000, 3001, 3002, 3, 4]);
    }

    #[test]
    fn calibration_is_validated_on_held_out_folds_only() {
        // Fold 0 = {0, 1, 2} has close impostors (100), fold 1 = {3, 4, 5} far ones (1000): the
        // threshold tuned on fold 1 (999) lets all of fold 0's impostors in; the one tuned on fold
        // 0 (99) none of fold 1's. A calibration measured on its own folds would show no error.
        let mut trials = trials_from(
            &[(0, 50), (1, 50), (3, 50), (4, 50)],
            &[
                (0, 1, 100),
                (0, 2, 100),
                (1, 2, 100),
                (3, 4, 1000),
                (3, 5, 1000),
                (4, 5, 1000),
                (0, 3, 5000),
            ],
        );
        trials.identities = 6;
        let fold = [0usize, 0, 0, 1, 1, 1];
        let out = validate_calibration(&[(&trials, &fold[..])], 2, &[("x", 0.34)]);
        let o = &out[0][0];
        assert_eq!(
            (o.impostors, o.genuine),
            (6, 4),
            "the cross-fold pair is never used"
        );
        assert_eq!(o.false_matches, 3);
        assert_eq!(o.false_non_matches, 0);
        assert_eq!(o.calibrated_folds, 2);
        assert!((o.fmr - 0.5).abs() < 1e-12);
        let strict = validate_calibration(&[(&trials, &fold[..])], 2, &[("y", 1e-3)]);
        assert_eq!(
            strict[0][0].calibrated_folds, 0,
            "3 impostors cannot calibrate 1e-3"
        );
        assert_eq!(strict[0][0].impostors, 0);
        assert_eq!(
            calibrate(&[trials.histogram()], 1e-3),
            None,
            "too few impostors for 1e-3"
        );
        assert_eq!(calibrate(&[trials.histogram()], 0.2), Some(99));
    }

    #[test]
    fn thresholds_tuned_on_one_set_of_trials_are_measured_on_another_per_target() {
        // Tuned as above (fold 0 tuned on fold 1: 999; fold 1 tuned on fold 0: 99), measured on
        // trials of the same identities whose genuine distances differ per target: target "x"
        // sees genuine 500 (refused at 99, accepted at 999), target "y" genuine 50 (accepted).
        let mut tuning = trials_from(
            &[(0, 50), (3, 50)],
            &[
                (0, 1, 100),
                (0, 2, 100),
                (1, 2, 100),
                (3, 4, 1000),
                (3, 5, 1000),
                (4, 5, 1000),
            ],
        );
        tuning.identities = 6;
        let mut far = trials_from(&[(0, 500), (1, 500), (3, 500)], &[(0, 1, 2000)]);
        far.identities = 6;
        let mut near = trials_from(&[(0, 50)], &[(3, 4, 60)]);
        near.identities = 6;
        let fold = [0usize, 0, 0, 1, 1, 1];
        let targets = [("x", 0.34), ("y", 0.34)];
        let out =
            validate_calibration_on(&[(&tuning, &fold[..])], &[vec![&far, &near]], 2, &targets);
        let [x, y] = [&out[0][0], &out[0][1]];
        // Fold 0 (threshold 999) accepts identities 0 and 1's 500; fold 1 (99) refuses 3's.
        assert_eq!((x.false_non_matches, x.genuine), (1, 3));
        assert_eq!((x.false_matches, x.impostors), (0, 1));
        assert_eq!((y.false_non_matches, y.genuine), (0, 1));
        assert_eq!((y.false_matches, y.impostors), (1, 1), "60 <= 99 in fold 1");
        // The measured trials themselves never tune: the plain validation of `tuning` differs.
        let plain = validate_calibration(&[(&tuning, &fold[..])], 2, &targets[..1]);
        assert_eq!((plain[0][0].false_non_matches, plain[0][0].genuine), (0, 2));
    }

    #[test]
    fn a_connected_station_enrols_three_of_which_two_pairs_match() {
        // One hand of five captures: 0 matches 1 only, 2 matches 1 only, 3 and 4 match each
        // other and 1. Every pair: 1, 3, 4 (the earliest clique); connected: 0, 1, 2.
        let samples: Vec<SampleKey> = (0..5).map(|_| key(0, None)).collect();
        let pairs = [(0, 1), (1, 2), (1, 3), (1, 4), (3, 4)];
        let matches = |a: usize, b: usize| pairs.contains(&(a, b));
        let roles = |rule| {
            EnrolmentRoles::station(1, &samples, 3, 2, rule, StationProbes::AfterTaken, matches)
        };
        let every = roles(StationRule::EveryPair);
        assert_eq!(
            (every.references[0].as_slice(), every.probes[0].as_slice()),
            (&[1, 3, 4][..], &[][..])
        );
        let connected = roles(StationRule::Connected);
        assert_eq!(
            (
                connected.references[0].as_slice(),
                connected.probes[0].as_slice()
            ),
            (&[0, 1, 2][..], &[3, 4][..])
        );
    }

    #[test]
    fn calibration_names_the_set_that_bound_it_and_ignores_sets_too_small_to_measure() {
        // Ten impostors each: at 0.1 one may match. Set 0 allows up to 299, set 1 up to 199, set
        // 2 has the closest impostors but only five trials (fewer than 1 / 0.1): it cannot say.
        let far: Vec<(u32, u32, u32)> = (0..10).map(|i| (0, 1, 200 + 100 * i)).collect();
        let near: Vec<(u32, u32, u32)> = (0..10).map(|i| (0, 1, 100 + 100 * i)).collect();
        let thin: Vec<(u32, u32, u32)> = (0..5).map(|_| (0, 1, 10)).collect();
        let sets = [
            trials_from(&[], &far).histogram(),
            trials_from(&[], &near).histogram(),
            trials_from(&[], &thin).histogram(),
        ];
        assert_eq!(calibrate_bound(&sets, 0.1), Some((1, 199)));
        assert_eq!(calibrate(&sets, 0.1), Some(199));
        // Two sets binding alike: the first is named.
        let tie = [sets[1].clone(), sets[1].clone()];
        assert_eq!(calibrate_bound(&tie, 0.1), Some((0, 199)));
        assert_eq!(calibrate_bound(&sets[2..], 0.1), None);
    }
}
