//! Sweeps over cases, and shrinking a failing case to a small reproducer.

use core::cell::RefCell;
use core::fmt;
use core::ops::RangeInclusive;
use std::collections::BTreeSet;
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant as WallClock;

use crate::faults::{FaultId, FaultKind, FaultRecord};
use crate::seeds::{SEED_COUNT_VAR, SEED_VAR, rerun_command, seeds_from};
use crate::segment::Segment;
use crate::sim::Sim;

/// Environment variable holding a case's knobs, `name=value,...`: with
/// [`SEED_VAR`] it replays that one case.
pub const CASE_VAR: &str = "SIM_CASE";

/// Environment variable listing the only faults a case may have
/// ([`FaultId`]s joined by `+`, or `none`).
pub const FAULTS_VAR: &str = "SIM_FAULTS";

/// Environment variable bounding the time spent shrinking, in seconds
/// (default 60; `0` turns shrinking off).
pub const SHRINK_VAR: &str = "SIM_SHRINK_SECONDS";

/// The knobs and allowed faults of a case to replay.
type Replay = (Vec<(&'static str, u64)>, Option<BTreeSet<FaultId>>);

/// Runs of the scenario at most, whatever the time left.
const MAX_ATTEMPTS: u32 = 2000;

/// One run of a scenario: its seed, the value of each knob, and which
/// faults may happen. A scenario reads its size from the knobs and builds
/// its network with [`sim`](Case::sim) (or [`segment`](Case::segment)), so
/// that a shrinking run can leave faults out.
///
/// ```
/// use reversal_sim::Sweep;
///
/// let case = Sweep::new(1).knob("lines", 1..=16).case(7);
/// assert_eq!((case.seed(), case.knob("lines")), (7, 16));
/// let sim = case.sim();
/// assert_eq!(sim.seed(), 7);
/// ```
#[derive(Debug, Clone)]
pub struct Case {
    seed: u64,
    knobs: Vec<(&'static str, u64)>,
    /// `None`: every fault may happen.
    allowed: Option<BTreeSet<FaultId>>,
    /// The faults that happened in the runs built from this case.
    record: Rc<RefCell<FaultRecord>>,
}

impl Case {
    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The value of knob `name`.
    ///
    /// # Panics
    ///
    /// If the sweep has no knob of that name.
    pub fn knob(&self, name: &str) -> u64 {
        self.knobs
            .iter()
            .find(|(knob, _)| *knob == name)
            .map(|&(_, value)| value)
            .unwrap_or_else(|| panic!("the sweep has no knob {name:?}"))
    }

    /// A simulation with the case's seed whose faults are limited to the
    /// case's.
    pub fn sim(&self) -> Sim {
        Sim::on(self.segment())
    }

    /// A segment with the case's seed whose faults are limited to the
    /// case's, for scenarios that poll ports by hand.
    pub fn segment(&self) -> Segment {
        *self.record.borrow_mut() = FaultRecord::new(self.allowed.clone());
        Segment::recording(self.seed, Some(Rc::clone(&self.record)))
    }

    fn happened(&self) -> Vec<FaultId> {
        self.record.borrow().happened().to_vec()
    }

    fn with(&self, knobs: Vec<(&'static str, u64)>, allowed: Option<BTreeSet<FaultId>>) -> Case {
        Case {
            seed: self.seed,
            knobs,
            allowed,
            record: Rc::default(),
        }
    }

    /// The environment that replays this case.
    fn env(&self) -> String {
        let mut env = format!("{SEED_VAR}={}", self.seed);
        if !self.knobs.is_empty() {
            let knobs: Vec<_> = self
                .knobs
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            env += &format!(" {CASE_VAR}={}", knobs.join(","));
        }
        if let Some(allowed) = &self.allowed {
            let faults: Vec<_> = allowed.iter().map(FaultId::to_string).collect();
            let faults = if faults.is_empty() {
                "none".to_owned()
            } else {
                faults.join("+")
            };
            env += &format!(" {FAULTS_VAR}={faults}");
        }
        env
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed {}", self.seed)?;
        for (name, value) in &self.knobs {
            write!(f, ", {name}={value}")?;
        }
        Ok(())
    }
}

/// A sweep over seeds with named knobs (lines, clients, bytes...) that a
/// failing case is shrunk along.
///
/// Each knob has a range: the sweep runs every seed with each knob at the
/// top of its range. When a seed fails, the case is shrunk: each knob as
/// low as it still fails, then the faults that happened, by kind and then
/// one by one (delta debugging), for at most `SIM_SHRINK_SECONDS` (60 by
/// default). The smallest failing case is run once more (so its pcap is
/// the one left behind) and printed with the command that replays it:
///
/// ```text
/// shrunk to seed 12, lines=3, clients=1 with 1 of 38 faults (2.tx.17.drop) in 41 runs;
/// rerun with SIM_SEED=12 SIM_CASE=lines=3,clients=1 SIM_FAULTS=2.tx.17.drop cargo test ...
/// ```
///
/// Use it through [`case_sweep!`](crate::case_sweep):
///
/// ```
/// use reversal_sim::{Sweep, case_sweep};
///
/// let mut sizes = Vec::new();
/// case_sweep!(Sweep::new(3).knob("lines", 1..=16), |case| {
///     let sim = case.sim();
///     sizes.push((sim.seed(), case.knob("lines")));
/// });
/// # if std::env::var_os("SIM_SEED").is_none() && std::env::var_os("SIM_SEEDS").is_none() {
/// assert_eq!(sizes, [(0, 16), (1, 16), (2, 16)]);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Sweep {
    seeds: u64,
    knobs: Vec<(&'static str, RangeInclusive<u64>)>,
}

impl Sweep {
    /// Seeds `0..seeds` (or as the seed variables say), no knob yet.
    pub fn new(seeds: u64) -> Sweep {
        Sweep {
            seeds,
            knobs: Vec::new(),
        }
    }

    /// A knob whose sweep value is the top of `range` and which shrinking
    /// may lower to its bottom.
    pub fn knob(mut self, name: &'static str, range: RangeInclusive<u64>) -> Sweep {
        self.knobs.push((name, range));
        self
    }

    /// The case of `seed` with every knob at the top of its range and every
    /// fault allowed.
    pub fn case(&self, seed: u64) -> Case {
        Case {
            seed,
            knobs: self
                .knobs
                .iter()
                .map(|(name, range)| (*name, *range.end()))
                .collect(),
            allowed: None,
            record: Rc::default(),
        }
    }

    /// Runs `scenario` for each case; see the type's documentation.
    /// `test` names the test for the replay command, as in
    /// [`sweep_seeds`](crate::sweep_seeds).
    ///
    /// # Panics
    ///
    /// When the scenario panics for a case, with its panic, after
    /// shrinking; or when a seed variable is malformed.
    #[track_caller]
    pub fn run(&self, test: &str, mut scenario: impl FnMut(&Case)) {
        let caller = Path::new(Location::caller().file());
        let var = |name| std::env::var(name).ok();
        let seeds = seeds_from(
            var(SEED_VAR).as_deref(),
            var(SEED_COUNT_VAR).as_deref(),
            self.seeds,
        )
        .unwrap_or_else(|error| panic!("{error}"));
        let replay = self
            .replay(var(CASE_VAR).as_deref(), var(FAULTS_VAR).as_deref())
            .unwrap_or_else(|error| panic!("{error}"));
        let budget = match var(SHRINK_VAR) {
            Some(seconds) => seconds
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{SHRINK_VAR} must be a number of seconds")),
            None => 60.0,
        };
        for seed in seeds {
            let mut case = self.case(seed);
            if let Some((knobs, allowed)) = &replay {
                case = case.with(knobs.clone(), allowed.clone());
            }
            let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| scenario(&case))) else {
                continue;
            };
            let command = |case: &Case| rerun_command(&case.env(), test, caller);
            eprintln!(
                "scenario {test} failed with {case}; rerun with {}",
                command(&case)
            );
            if replay.is_none() && budget > 0.0 {
                let shrunk = Shrinker::new(self, case, budget).shrink(&mut scenario);
                eprintln!("{shrunk}; rerun with {}", command(&shrunk.case));
            }
            panic::resume_unwind(panic);
        }
    }

    /// The knobs and faults the environment asks to replay, if any.
    fn replay(&self, knobs: Option<&str>, faults: Option<&str>) -> Result<Option<Replay>, String> {
        if knobs.is_none() && faults.is_none() {
            return Ok(None);
        }
        let mut values = self.case(0).knobs;
        for setting in knobs.unwrap_or("").split(',').filter(|s| !s.is_empty()) {
            let (name, value) = setting
                .split_once('=')
                .ok_or_else(|| format!("{CASE_VAR}: {setting:?} is not name=value"))?;
            let slot = values
                .iter_mut()
                .find(|(knob, _)| *knob == name.trim())
                .ok_or_else(|| format!("{CASE_VAR}: the sweep has no knob {name:?}"))?;
            slot.1 = value
                .trim()
                .parse()
                .map_err(|_| format!("{CASE_VAR}: {value:?} is not an unsigned integer"))?;
        }
        let allowed = match faults.map(str::trim) {
            None => None,
            Some("none") => Some(BTreeSet::new()),
            Some(list) => Some(
                list.split('+')
                    .map(|fault| fault.parse().map_err(|e| format!("{FAULTS_VAR}: {e}")))
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Some((values, allowed)))
    }
}

/// Runs a scenario over the cases of a [`Sweep`], shrinking a failing one,
/// naming the test after the function the macro is called in (as
/// [`seed_sweep!`](crate::seed_sweep)).
///
/// See [`Sweep`] for an example.
#[macro_export]
macro_rules! case_sweep {
    ($sweep:expr, $scenario:expr $(,)?) => {
        $crate::Sweep::run(&$sweep, $crate::__test_path!(), $scenario)
    };
}

/// The smallest failing case found, and what it took.
struct Shrunk {
    case: Case,
    faults_before: usize,
    runs: u32,
    out_of_time: bool,
}

impl fmt::Display for Shrunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shrunk to {}", self.case)?;
        if let Some(allowed) = &self.case.allowed {
            let faults: Vec<_> = allowed.iter().map(FaultId::to_string).collect();
            write!(
                f,
                " with {} of {} faults ({})",
                faults.len(),
                self.faults_before,
                faults.join(", ")
            )?;
        }
        write!(f, " in {} runs", self.runs)?;
        if self.out_of_time {
            write!(f, " (stopped at the time limit, {SHRINK_VAR})")?;
        }
        Ok(())
    }
}

/// Finds a smaller failing case: knobs first, then faults.
struct Shrinker<'a> {
    sweep: &'a Sweep,
    /// The smallest failing case so far.
    best: Case,
    /// The faults that happened in its run.
    faults: Vec<FaultId>,
    started: WallClock,
    budget: f64,
    runs: u32,
}

impl<'a> Shrinker<'a> {
    fn new(sweep: &'a Sweep, failed: Case, budget: f64) -> Shrinker<'a> {
        let faults = failed.happened();
        Shrinker {
            sweep,
            best: failed,
            faults,
            started: WallClock::now(),
            budget,
            runs: 0,
        }
    }

    fn out_of_time(&self) -> bool {
        self.runs >= MAX_ATTEMPTS || self.started.elapsed().as_secs_f64() > self.budget
    }

    /// Whether `case` fails; if it does, it becomes the best.
    fn fails(&mut self, case: Case, scenario: &mut dyn FnMut(&Case)) -> bool {
        self.runs += 1;
        let failed = quietly(|| panic::catch_unwind(AssertUnwindSafe(|| scenario(&case))).is_err());
        if failed {
            self.faults = case.happened();
            self.best = case;
        }
        failed
    }

    fn shrink(mut self, scenario: &mut dyn FnMut(&Case)) -> Shrunk {
        let faults_before = self.faults.len();
        self.shrink_knobs(scenario);
        self.shrink_faults(scenario);
        let out_of_time = self.out_of_time();
        // Once more, so the pcap left behind is the shrunk case's.
        let best = self.best.clone();
        quietly(|| panic::catch_unwind(AssertUnwindSafe(|| scenario(&best))).is_err());
        Shrunk {
            case: self.best,
            faults_before,
            runs: self.runs,
            out_of_time,
        }
    }

    /// Lowers each knob as far as the case still fails: to the bottom of
    /// its range, to half way, or by one.
    fn shrink_knobs(&mut self, scenario: &mut dyn FnMut(&Case)) {
        for (index, (_, range)) in self.sweep.knobs.iter().enumerate() {
            let low = *range.start();
            loop {
                let value = self.best.knobs[index].1;
                let candidates = [low, low + (value - low) / 2, value.saturating_sub(1)];
                let mut smaller = false;
                for candidate in candidates.into_iter().filter(|&c| c >= low && c < value) {
                    if self.out_of_time() {
                        return;
                    }
                    let mut knobs = self.best.knobs.clone();
                    knobs[index].1 = candidate;
                    if self.fails(self.best.with(knobs, None), scenario) {
                        smaller = true;
                        break;
                    }
                }
                if !smaller {
                    break;
                }
            }
        }
    }

    /// Leaves out whole kinds of fault, then delta-debugs the rest.
    fn shrink_faults(&mut self, scenario: &mut dyn FnMut(&Case)) {
        let knobs = self.best.knobs.clone();
        let mut keep = self.faults.clone();
        if self.fails(
            self.best
                .with(knobs.clone(), Some(keep.iter().copied().collect())),
            scenario,
        ) {
            keep = self.faults.clone();
        } else {
            // The run does not fail on its own faults alone: the scenario
            // does not build its network from the case.
            return;
        }
        for kind in [
            FaultKind::Corrupt,
            FaultKind::Truncate,
            FaultKind::Duplicate,
            FaultKind::Delay,
            FaultKind::Drop,
        ] {
            if self.out_of_time() || !keep.iter().any(|fault| fault.kind == kind) {
                continue;
            }
            let without: Vec<_> = keep.iter().copied().filter(|f| f.kind != kind).collect();
            if self.fails(
                self.best
                    .with(knobs.clone(), Some(without.iter().copied().collect())),
                scenario,
            ) {
                keep = self.faults.clone();
            }
        }
        // Delta debugging (Zeller): drop ever smaller chunks of faults.
        let mut chunks = 2;
        while keep.len() >= 2 && !self.out_of_time() {
            let size = keep.len().div_ceil(chunks);
            let mut reduced = false;
            for start in (0..keep.len()).step_by(size) {
                if self.out_of_time() {
                    break;
                }
                let rest: BTreeSet<_> = keep[..start]
                    .iter()
                    .chain(&keep[(start + size).min(keep.len())..])
                    .copied()
                    .collect();
                if self.fails(self.best.with(knobs.clone(), Some(rest)), scenario) {
                    keep = self.faults.clone();
                    chunks = (chunks - 1).max(2);
                    reduced = true;
                    break;
                }
            }
            if !reduced {
                if chunks >= keep.len() {
                    break;
                }
                chunks = (chunks * 2).min(keep.len());
            }
        }
        if keep.len() == 1 && !self.out_of_time() {
            self.fails(self.best.with(knobs, Some(BTreeSet::new())), scenario);
        }
    }
}

/// Runs `f` with the panic messages of this thread silenced: the shrinker's
/// failing runs are expected. Other threads' panics are reported as usual.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let thread = std::thread::current().id();
    let previous = Arc::new(panic::take_hook());
    let delegate = Arc::clone(&previous);
    panic::set_hook(Box::new(move |info| {
        if std::thread::current().id() != thread {
            delegate(info);
        }
    }));
    let result = f();
    drop(panic::take_hook());
    if let Ok(previous) = Arc::try_unwrap(previous) {
        panic::set_hook(previous);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_replays_from_its_environment() {
        let sweep = Sweep::new(4).knob("lines", 1..=16).knob("hosts", 1..=4);
        let (knobs, allowed) = sweep
            .replay(Some("lines=3"), Some("1.tx.7.drop+0.rx.2.delay"))
            .unwrap()
            .unwrap();
        assert_eq!(knobs, [("lines", 3), ("hosts", 4)]);
        let case = sweep.case(9).with(knobs, allowed);
        assert_eq!(
            case.env(),
            "SIM_SEED=9 SIM_CASE=lines=3,hosts=4 SIM_FAULTS=0.rx.2.delay+1.tx.7.drop"
        );
        assert_eq!(sweep.replay(None, None), Ok(None));
        let none = sweep.replay(None, Some("none")).unwrap().unwrap();
        assert_eq!(none.1, Some(BTreeSet::new()));
        assert!(sweep.replay(Some("colour=3"), None).is_err());
        assert!(sweep.replay(None, Some("1.tx.7.explode")).is_err());
    }
}
