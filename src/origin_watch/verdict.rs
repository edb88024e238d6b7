//! Hysteresis: turns a stream of probe results into "the origin is down" / "the origin is
//! back" judgements. No I/O and no clock of its own, so every rule is unit-tested.
//!
//! - `normal` (or `recovering`) → down after `failures` failed probes in a row.
//! - `outage` → up after `successes` good probes in a row that span at least
//!   `min_up`: a flapping origin keeps breaking the run and stays in outage.

use std::time::{Duration, Instant};

use lifeboat_mailstore::OutageState;

use crate::config::WatchConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub failures: u32,
    pub successes: u32,
    pub min_up: Duration,
}

impl Thresholds {
    pub fn from_config(watch: &WatchConfig) -> Thresholds {
        Thresholds {
            failures: watch.failures_before_outage,
            successes: watch.successes_before_recovery,
            min_up: watch.recovery_min_duration,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Enough consecutive failures: the origin is down.
    Down,
    /// Enough consecutive successes over enough time: the origin is back.
    Up,
}

/// The current run of equal probe results.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    failures: u32,
    successes: u32,
    first_success: Option<Instant>,
}

impl Verdict {
    /// Takes one probe result, seen at `at` while the origin is in `state`. Returns a
    /// judgement when it changes what the state should be; the caller applies it (or not,
    /// when an admin holds the state) and the run starts over.
    pub fn observe(
        &mut self,
        up: bool,
        at: Instant,
        state: OutageState,
        limits: Thresholds,
    ) -> Option<Judgement> {
        if up {
            self.failures = 0;
            self.successes += 1;
            let first = *self.first_success.get_or_insert(at);
            let judged = state == OutageState::Outage
                && self.successes >= limits.successes
                && at.duration_since(first) >= limits.min_up;
            judged.then(|| self.judged(Judgement::Up))
        } else {
            self.successes = 0;
            self.first_success = None;
            self.failures += 1;
            let judged = state != OutageState::Outage && self.failures >= limits.failures;
            judged.then(|| self.judged(Judgement::Down))
        }
    }

    fn judged(&mut self, judgement: Judgement) -> Judgement {
        *self = Verdict::default();
        judgement
    }

    /// Failed probes in the current run (0 after a success).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Probes in the current run of equal results.
    pub fn streak(&self) -> u32 {
        self.failures.max(self.successes)
    }

    /// Whether the next probe should come soon: a failure run that has not yet reached
    /// a verdict (quick retries make detection take seconds).
    pub fn undecided(&self, state: OutageState, limits: Thresholds) -> bool {
        state != OutageState::Outage && self.failures > 0 && self.failures < limits.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use OutageState::*;

    const LIMITS: Thresholds = Thresholds {
        failures: 3,
        successes: 3,
        min_up: Duration::from_secs(10),
    };

    /// Feeds `results` one second apart, starting at `start`, in a state that follows the
    /// judgements; returns the judgements with the second they came at.
    fn run(results: &[bool], mut state: OutageState) -> Vec<(usize, Judgement)> {
        let start = Instant::now();
        let mut verdict = Verdict::default();
        let mut judgements = Vec::new();
        for (second, &up) in results.iter().enumerate() {
            let at = start + Duration::from_secs(second as u64);
            if let Some(judgement) = verdict.observe(up, at, state, LIMITS) {
                state = match judgement {
                    Judgement::Down => Outage,
                    Judgement::Up => Recovering,
                };
                judgements.push((second, judgement));
            }
        }
        judgements
    }

    #[test]
    fn three_failures_in_a_row_mean_down() {
        assert_eq!(run(&[false, false, false], Normal), [(2, Judgement::Down)]);
        assert_eq!(run(&[false, false, true, false, false], Normal), []);
    }

    #[test]
    fn recovering_falls_back_to_outage_on_failures() {
        assert_eq!(
            run(&[false, false, false], Recovering),
            [(2, Judgement::Down)]
        );
    }

    #[test]
    fn successes_must_span_the_minimum_time() {
        // Three successes at 0, 1, 2 s are too quick; the 11th second (10 s after the
        // first success) ends the outage.
        let judgements = run(&[true; 12], Outage);
        assert_eq!(judgements, [(10, Judgement::Up)]);
    }

    #[test]
    fn successes_must_be_consecutive() {
        let mut results = vec![true; 9];
        results.push(false);
        results.extend([true; 10]);
        assert_eq!(run(&results, Outage), []);
        results.push(true);
        assert_eq!(run(&results, Outage), [(20, Judgement::Up)]);
    }

    #[test]
    fn a_flapping_origin_stays_in_outage() {
        // Up for 5 s, down for 1 s, over and over: never 10 s of good probes.
        let results: Vec<bool> = (0..120).map(|s| s % 6 != 5).collect();
        assert_eq!(run(&results, Outage), []);
        // And the same origin seen from normal is declared down only when three probes
        // in a row fail, which this pattern never does.
        assert_eq!(run(&results, Normal), []);
    }

    #[test]
    fn good_probes_in_normal_state_judge_nothing() {
        assert_eq!(run(&[true; 30], Normal), []);
        assert_eq!(run(&[false; 30], Outage), []);
    }

    #[test]
    fn quick_retries_only_while_a_failure_run_is_undecided() {
        let mut verdict = Verdict::default();
        let at = Instant::now();
        assert!(!verdict.undecided(Normal, LIMITS));
        verdict.observe(false, at, Normal, LIMITS);
        assert!(verdict.undecided(Normal, LIMITS));
        assert!(!verdict.undecided(Outage, LIMITS));
        verdict.observe(false, at, Normal, LIMITS);
        assert_eq!(verdict.failures(), 2);
        assert!(verdict.observe(false, at, Normal, LIMITS).is_some());
        assert!(!verdict.undecided(Normal, LIMITS));
    }
}
