//! Running one scenario over many seeds, and replaying one.

use core::fmt;
use core::ops::Range;
use std::panic::{self, AssertUnwindSafe, Location};
use std::path::{Component, Path};

/// Environment variable that runs only the given seed.
pub const SEED_VAR: &str = "SIM_SEED";

/// Environment variable that overrides how many seeds a sweep runs.
pub const SEED_COUNT_VAR: &str = "SIM_SEEDS";

/// A seed variable that does not hold an unsigned integer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadSeedVar {
    name: &'static str,
    value: String,
}

impl fmt::Display for BadSeedVar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} must be an unsigned integer, not {:?}",
            self.name, self.value
        )
    }
}

/// The seeds to run given the two variables' values: `SIM_SEED` alone if
/// set, else `0..SIM_SEEDS`, else `0..default_count`.
pub(crate) fn seeds_from(
    seed: Option<&str>,
    count: Option<&str>,
    default_count: u64,
) -> Result<Range<u64>, BadSeedVar> {
    let parse = |name: &'static str, value: &str| {
        value.trim().parse::<u64>().map_err(|_| BadSeedVar {
            name,
            value: value.to_owned(),
        })
    };
    if let Some(seed) = seed {
        let seed = parse(SEED_VAR, seed)?;
        return Ok(seed..seed + 1);
    }
    match count {
        Some(count) => Ok(0..parse(SEED_COUNT_VAR, count)?),
        None => Ok(0..default_count),
    }
}

/// Runs `scenario` once per seed: `0..default_count`, or `0..SIM_SEEDS`
/// when that variable is set, or only `SIM_SEED` when that one is.
///
/// When a seed fails, prints which one and the command that replays it
/// alone, then panics again with the scenario's panic. `test` names the
/// test for that command (its path inside the test crate, as
/// `cargo test` filters it); [`seed_sweep!`](crate::seed_sweep) fills it
/// in for you.
///
/// # Panics
///
/// When the scenario panics for a seed, or when a seed variable holds
/// anything but an unsigned integer.
#[track_caller]
pub fn sweep_seeds(test: &str, default_count: u64, mut scenario: impl FnMut(u64)) {
    let caller = Location::caller();
    let var = |name| std::env::var(name).ok();
    let seeds = seeds_from(
        var(SEED_VAR).as_deref(),
        var(SEED_COUNT_VAR).as_deref(),
        default_count,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    sweep_over(test, seeds, Path::new(caller.file()), &mut scenario);
}

fn sweep_over(test: &str, seeds: Range<u64>, caller_file: &Path, scenario: &mut dyn FnMut(u64)) {
    for seed in seeds {
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
            eprintln!(
                "scenario {test} failed with seed {seed}; rerun with {}",
                rerun_command(&format!("{SEED_VAR}={seed}"), test, caller_file)
            );
            panic::resume_unwind(panic);
        }
    }
}

/// Runs the enclosing test's scenario over seeds with [`sweep_seeds`],
/// naming the test after the function the macro is called in.
///
/// ```
/// use reversal_sim::seed_sweep;
///
/// let mut ran = Vec::new();
/// seed_sweep!(4, |seed| ran.push(seed));
/// # if std::env::var_os("SIM_SEED").is_none() && std::env::var_os("SIM_SEEDS").is_none() {
/// assert_eq!(ran, [0, 1, 2, 3]);
/// # }
/// ```
#[macro_export]
macro_rules! seed_sweep {
    ($default_count:expr, $scenario:expr $(,)?) => {
        $crate::sweep_seeds($crate::__test_path!(), $default_count, $scenario)
    };
}

/// The path of the function this is expanded in, without the crate's name:
/// what `cargo test` filters by.
#[doc(hidden)]
#[macro_export]
macro_rules! __test_path {
    () => {{
        fn __test_path_here() {}
        let path = ::core::any::type_name_of_val(&__test_path_here);
        let path = path.strip_suffix("::__test_path_here").unwrap_or(path);
        path.split_once("::").map_or(path, |(_, inside)| inside)
    }};
}

/// The command that replays `test` with the environment `env`
/// (`SIM_SEED=n` and what else a case needs), in the build profile the
/// test runs in.
pub(crate) fn rerun_command(env: &str, test: &str, caller_file: &Path) -> String {
    let package = std::env::var("CARGO_PKG_NAME")
        .map(|name| format!(" -p {name}"))
        .unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    let target = test_target(caller_file, &binary_name());
    format!("{env} cargo test{package}{profile}{target} {test}")
}

/// The cargo flag selecting the test binary built from `caller_file`:
/// `--test NAME` for integration tests, `--bin NAME` for binaries, `--lib`
/// otherwise.
fn test_target(caller_file: &Path, binary: &str) -> String {
    let folders: Vec<_> = caller_file
        .parent()
        .into_iter()
        .flat_map(Path::components)
        .filter_map(|component| match component {
            Component::Normal(name) => name.to_str(),
            _ => None,
        })
        .collect();
    let kind = folders
        .iter()
        .rposition(|&folder| folder == "src" || folder == "tests")
        .map(|at| (folders[at], folders.get(at + 1).copied()));
    match kind {
        Some(("tests", _)) => format!(" --test {binary}"),
        Some(("src", Some("bin"))) => format!(" --bin {binary}"),
        _ => " --lib".to_owned(),
    }
}

/// The running test binary's name without the hash cargo appends.
fn binary_name() -> String {
    let stem = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem()?.to_str().map(str::to_owned))
        .unwrap_or_default();
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => name.to_owned(),
        _ => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_count_runs_from_zero() {
        assert_eq!(seeds_from(None, None, 8), Ok(0..8));
    }

    #[test]
    fn sim_seeds_overrides_the_count() {
        assert_eq!(seeds_from(None, Some("200"), 8), Ok(0..200));
    }

    #[test]
    fn sim_seed_runs_only_that_seed() {
        assert_eq!(seeds_from(Some("41"), Some("200"), 8), Ok(41..42));
    }

    #[test]
    fn garbage_in_a_seed_variable_is_refused() {
        let error = seeds_from(Some("seven"), None, 8).unwrap_err();
        assert_eq!(
            error.to_string(),
            "SIM_SEED must be an unsigned integer, not \"seven\""
        );
        assert!(seeds_from(None, Some("-1"), 8).is_err());
    }

    #[test]
    fn integration_tests_are_selected_with_test() {
        let target = test_target(Path::new("tests/tests/harness.rs"), "harness");
        assert_eq!(target, " --test harness");
    }

    #[test]
    fn library_tests_are_selected_with_lib() {
        // Our own crate lives in a folder named `tests`; `src` is nearer.
        let target = test_target(Path::new("tests/src/seeds.rs"), "reversal_sim");
        assert_eq!(target, " --lib");
    }

    #[test]
    fn binary_tests_are_selected_with_bin() {
        let target = test_target(Path::new("host-tap/src/bin/client.rs"), "client");
        assert_eq!(target, " --bin client");
    }

    #[test]
    fn a_failing_seed_is_reported_and_the_panic_goes_on() {
        let mut ran = Vec::new();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            sweep_over(
                "unit",
                0..10,
                Path::new("tests/src/seeds.rs"),
                &mut |seed| {
                    ran.push(seed);
                    assert_ne!(seed, 2, "seed 2 fails on purpose");
                },
            )
        }));
        let payload = result.unwrap_err();
        let message = payload.downcast_ref::<String>().unwrap();
        assert!(message.contains("seed 2 fails on purpose"), "{message}");
        assert_eq!(ran, [0, 1, 2], "the sweep stops at the failing seed");
    }

    #[test]
    fn rerun_command_sets_the_seed_and_names_the_test() {
        let command = rerun_command(
            "SIM_SEED=9",
            "some_test",
            Path::new("tests/tests/harness.rs"),
        );
        assert!(command.starts_with("SIM_SEED=9 cargo test"), "{command}");
        assert!(command.ends_with(" some_test"), "{command}");
    }
}
