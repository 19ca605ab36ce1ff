//! Shared pieces of the LVM integration tests: loop-device sandboxes, the root policy, the
//! backend-independent suite, and an independent `lvs`/`vgs` oracle.
#![allow(dead_code)]

pub mod daemon;
pub mod example;
pub mod fixture;
pub mod suite;

use libtest_mimic::{Completion, Failed, Trial};

/// Whether tests that need root must run: as root, or with `CI=true` (where they then fail
/// loudly if they cannot set up, never skip).
pub fn root_tests_enabled() -> bool {
    testkit::fixture::root_tests_required()
}

/// Wraps a root test: skipped with a printed reason when root tests are disabled.
pub fn root_trial<F>(name: impl Into<String>, f: F) -> Trial
where
    F: FnOnce() -> Result<(), Failed> + Send + 'static,
{
    Trial::ignorable_test(name, move || {
        if !root_tests_enabled() {
            return Ok(Completion::ignored_with(
                "needs root: run as root or with CI=true",
            ));
        }
        f().map(|()| Completion::Completed)
    })
}

/// Prints which root tests will be skipped, then runs the root trials (made with
/// [`root_trial`]) and the plain ones.
pub fn run(root: Vec<Trial>, plain: Vec<Trial>) -> ! {
    let args = libtest_mimic::Arguments::from_args();
    if !root_tests_enabled() {
        eprintln!(
            "note: not root and CI unset: skipping {} root tests: {}",
            root.len(),
            root.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
        );
    }
    libtest_mimic::run(&args, root.into_iter().chain(plain).collect()).exit()
}

/// `Err(Failed)` unless `cond`.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(libtest_mimic::Failed::from(format!(
                "{}:{}: {}", file!(), line!(), format!($($fmt)+)
            )));
        }
    };
}

/// Converts any displayable error into a test failure with context.
pub fn ctx<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, Failed> {
    r.map_err(|e| Failed::from(format!("{what}: {e}")))
}

/// The first of `candidates` that exists (the first one if none does, so the error names it).
pub fn first_existing(candidates: &[&'static str]) -> &'static str {
    candidates
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or(candidates[0])
}
