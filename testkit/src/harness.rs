//! The one test harness of the workspace's integration tests (libtest-mimic): tiers, the root
//! gate, trial names taken from the functions, one assertion macro and one context helper.
//!
//! # Adding a test
//!
//! Write a function returning `Result<(), Failed>`, assert with [`ensure!`](crate::ensure) and
//! give errors context with [`ctx`] (any other error converts with `?`; a panic fails too):
//!
//! ```ignore
//! use testkit::harness::{ctx, Failed, Trial};
//! use testkit::ensure;
//!
//! fn usage_matches_btrfs_filesystem_usage() -> Result<(), Failed> {
//!     let usage = ctx("usage", fs.usage())?;
//!     ensure!(usage.free <= usage.size, "free {} > size {}", usage.free, usage.size);
//!     Ok(())
//! }
//! ```
//!
//! and register it next to it, with its tier (one edit, in one place):
//!
//! ```ignore
//! testkit::register!(oracle: usage_matches_btrfs_filesystem_usage);
//! ```
//!
//! (`root:`, `oracle:` or `plain:`). [`registered`] collects every registration of the test
//! binary (with `inventory`), and `main` hands them to [`run`]:
//! `testkit::harness::run(testkit::harness::registered())`.
//!
//! The name comes from the function: `MODULE::FUNCTION`, with `oracle::` in between for the
//! oracle tier (`space::oracle::usage_matches_btrfs_filesystem_usage`); MODULE is the module path
//! below the test crate (`module_path!()` without its first segment). Where the module path does
//! not give the prefix (a test crate's root), name it: `register!(prefix "cli"; root: f)`.
//! A new module of `tests/kernel/` is declared once, with `mod` in `main.rs`.
//!
//! Tests built from parameters (one per profile, one per backend) use [`root`], [`oracle`] and
//! [`plain`] with a computed name in a function returning the table, registered with
//! `register!(table: f)`; [`named!`](crate::named) pairs a function with its name for such
//! tables.
//!
//! # Tiers
//!
//! - **plain**: runs everywhere.
//! - **root**: needs root (loop devices, mounts, lvm2). Unprivileged, it is reported as `ignored`
//!   with the reason, and [`run`] lists the skipped root tests at the end. As root, or with
//!   `CI=true` (or `CI=1`), it runs; under CI without root it fails, because a root test that
//!   cannot set up must never pass silently.
//! - **oracle**: compares with btrfs-progs; ignored with the reason unless `BTRFS_ORACLE=1`, then
//!   a root test. The default suite needs no btrfs-progs binary; select the tier with the filter
//!   `oracle` (every oracle test's name has `oracle::` in it).

pub use libtest_mimic::{Completion, Failed, Trial};

use crate::fixture::{is_root, root_tests_required};
use std::sync::Mutex;

/// Fails the test (returns `Err(Failed)`) unless `cond` holds; the message is `format!`-style
/// and starts with the file and line of the assertion.
///
/// Without a message, the message is the condition's source text.
///
/// ```ignore
/// ensure!(got == want, "got {got}, want {want}");
/// ensure!(report.pvs.is_empty());
/// ```
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return ::core::result::Result::Err($crate::harness::Failed::from(::std::format!(
                "{}:{}: {}",
                ::core::file!(),
                ::core::line!(),
                ::std::format!($($fmt)+)
            )));
        }
    };
    ($cond:expr $(,)?) => {
        $crate::ensure!($cond, "{}", ::core::stringify!($cond))
    };
}

/// Registers a trial next to its function (see the [module docs](crate::harness)):
/// `register!(root: f);`, `register!(oracle: f);`, `register!(plain: f);`, or with the prefix
/// named, `register!(prefix "cli"; root: f);`. The function is `fn() -> Result<(), Failed>`;
/// the trial is named after it as [`trial_name!`](crate::trial_name) says. A table of trials
/// built from parameters is registered as a function returning them:
/// `register!(table: round_trips);`. [`registered`] collects every registration of the test
/// binary.
#[macro_export]
macro_rules! register {
    (table: $table:path) => {
        $crate::harness::inventory::submit! {
            $crate::harness::Registration::table($table)
        }
    };
    (prefix $prefix:literal; $tier:ident : $test:ident) => {
        $crate::harness::inventory::submit! {
            $crate::harness::Registration::one(
                $prefix,
                $crate::register!(@tier $tier),
                ::core::stringify!($test),
                $test,
            )
        }
    };
    ($tier:ident : $test:ident) => {
        $crate::harness::inventory::submit! {
            $crate::harness::Registration::in_module(
                ::core::module_path!(),
                $crate::register!(@tier $tier),
                ::core::stringify!($test),
                $test,
            )
        }
    };
    (@tier root) => {
        $crate::harness::Tier::Root
    };
    (@tier oracle) => {
        $crate::harness::Tier::Oracle
    };
    (@tier plain) => {
        $crate::harness::Tier::Plain
    };
}

/// The tier of a registered trial (see the [module docs](crate::harness)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Needs root: [`root`].
    Root,
    /// Compares with btrfs-progs: [`oracle`].
    Oracle,
    /// Runs everywhere: [`plain`].
    Plain,
}

/// Where a registered trial's name starts.
#[derive(Debug, Clone, Copy)]
enum Prefix {
    /// `module_path!()` of the registration; the name starts with [`module_name`] of it.
    Module(&'static str),
    /// A prefix named in the registration.
    Named(&'static str),
}

/// What [`register!`](crate::register) submits: one function, or a table of trials.
#[derive(Debug)]
pub struct Registration(What);

/// The two kinds of [`Registration`].
#[derive(Debug)]
enum What {
    One {
        prefix: Prefix,
        tier: Tier,
        name: &'static str,
        test: fn() -> Result<(), Failed>,
    },
    Table(fn() -> Vec<Trial>),
}

impl Registration {
    /// The function `test`, named `name` below the module `module_path`, in `tier`.
    pub const fn in_module(
        module_path: &'static str,
        tier: Tier,
        name: &'static str,
        test: fn() -> Result<(), Failed>,
    ) -> Self {
        Registration(What::One {
            prefix: Prefix::Module(module_path),
            tier,
            name,
            test,
        })
    }

    /// The function `test`, named `name` below `prefix`, in `tier`.
    pub const fn one(
        prefix: &'static str,
        tier: Tier,
        name: &'static str,
        test: fn() -> Result<(), Failed>,
    ) -> Self {
        Registration(What::One {
            prefix: Prefix::Named(prefix),
            tier,
            name,
            test,
        })
    }

    /// The trials `table` returns (tests built from parameters, named by the table).
    pub const fn table(table: fn() -> Vec<Trial>) -> Self {
        Registration(What::Table(table))
    }

    /// The trials of this registration.
    fn trials(&self) -> Vec<Trial> {
        match self.0 {
            What::One {
                prefix,
                tier,
                name,
                test,
            } => {
                let prefix = match prefix {
                    Prefix::Module(path) => module_name(path),
                    Prefix::Named(prefix) => prefix,
                };
                vec![match tier {
                    Tier::Root => root(format!("{prefix}::{name}"), test),
                    Tier::Oracle => oracle(format!("{prefix}::oracle::{name}"), test),
                    Tier::Plain => plain(format!("{prefix}::{name}"), test),
                }]
            }
            What::Table(table) => table(),
        }
    }
}

inventory::collect!(Registration);

#[doc(hidden)]
pub use inventory;

/// Every trial registered in this test binary with [`register!`](crate::register), sorted by
/// name (the order of registrations is the linker's).
pub fn registered() -> Vec<Trial> {
    let mut trials: Vec<Trial> = inventory::iter::<Registration>
        .into_iter()
        .flat_map(Registration::trials)
        .collect();
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    trials
}

/// The name [`register!`](crate::register) gives a function, as a `String`: `trial_name!(f)` is
/// `MODULE::f`, `trial_name!(oracle: f)` is `MODULE::oracle::f` (or with `prefix "p";` first).
/// For parameterised tests: `format!("{}::{profile}", trial_name!(round_trip))`.
#[macro_export]
macro_rules! trial_name {
    (prefix $prefix:expr; oracle: $test:ident) => {
        ::std::format!("{}::oracle::{}", $prefix, ::core::stringify!($test))
    };
    (prefix $prefix:expr; $test:ident) => {
        ::std::format!("{}::{}", $prefix, ::core::stringify!($test))
    };
    (oracle: $test:ident) => {
        $crate::trial_name!(
            prefix $crate::harness::module_name(::core::module_path!()); oracle: $test
        )
    };
    ($test:ident) => {
        $crate::trial_name!(prefix $crate::harness::module_name(::core::module_path!()); $test)
    };
}

/// `(name, function)` for tables of parameterised tests: `named!(lifecycle)` is
/// `("lifecycle", lifecycle)`.
#[macro_export]
macro_rules! named {
    ($test:ident) => {
        (::core::stringify!($test), $test)
    };
}

/// The module path below the test crate: `kernel::space` → `space`, a crate root → `""`.
pub fn module_name(module_path: &str) -> &str {
    module_path.split_once("::").map_or("", |(_, rest)| rest)
}

/// Gives a failed `Result` the operation it came from: `ctx("vgcreate", r)?` fails with
/// `vgcreate: <error>`.
pub fn ctx<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> Result<T, Failed> {
    r.map_err(|e| Failed::from(format!("{what}: {e}")))
}

/// Whether the oracle tier (tests that compare with btrfs-progs) was asked for: `BTRFS_ORACLE=1`.
pub fn oracle_enabled() -> bool {
    std::env::var("BTRFS_ORACLE").is_ok_and(|v| v == "1")
}

/// Why a root test did not run unprivileged.
const NEEDS_ROOT: &str = "needs root: run as root, or with CI=true to require it";

/// Why an oracle test did not run.
const ORACLE_OFF: &str = "oracle tier: set BTRFS_ORACLE=1, needs btrfs-progs";

/// The root tests ignored in this run (for the list [`run`] prints).
static SKIPPED_ROOT: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// How many oracle tests were ignored in this run because the tier is off.
static SKIPPED_ORACLE: Mutex<usize> = Mutex::new(0);

/// Runs a root test body: as root it runs; under `CI=true` without root it fails; otherwise it
/// is ignored with the reason, and `name` goes on the list [`run`] prints.
pub fn root_gate(
    name: &str,
    test: impl FnOnce() -> Result<(), Failed>,
) -> Result<Completion, Failed> {
    if is_root() {
        test().map(|()| Completion::Completed)
    } else if root_tests_required() {
        Err("a root test under CI=true, but the process is not root: it cannot set up".into())
    } else {
        lock(&SKIPPED_ROOT).push(name.to_owned());
        Ok(Completion::ignored_with(NEEDS_ROOT))
    }
}

/// A test that needs root (see [`root_gate`]), of kind `root`.
pub fn root<F>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Result<(), Failed> + Send + 'static,
{
    let name = name.into();
    let gate_name = name.clone();
    Trial::ignorable_test(name, move || root_gate(&gate_name, test)).with_kind("root")
}

/// An oracle-tier test, of kind `oracle`: ignored with the reason unless `BTRFS_ORACLE=1`, then
/// a root test.
pub fn oracle<F>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Result<(), Failed> + Send + 'static,
{
    let name = name.into();
    let gate_name = name.clone();
    Trial::ignorable_test(name, move || {
        if !oracle_enabled() {
            *lock(&SKIPPED_ORACLE) += 1;
            return Ok(Completion::ignored_with(ORACLE_OFF));
        }
        root_gate(&gate_name, test)
    })
    .with_kind("oracle")
}

/// A test that runs everywhere, without privileges.
pub fn plain<F>(name: impl Into<String>, test: F) -> Trial
where
    F: FnOnce() -> Result<(), Failed> + Send + 'static,
{
    Trial::test(name, test)
}

/// Parses the command line, runs `trials`, then lists the root tests that were skipped (and
/// counts the oracle tests left out), and exits with the run's status.
pub fn run(trials: Vec<Trial>) -> ! {
    let args = libtest_mimic::Arguments::from_args();
    let conclusion = libtest_mimic::run(&args, trials);
    let mut skipped = std::mem::take(&mut *lock(&SKIPPED_ROOT));
    if !skipped.is_empty() {
        skipped.sort();
        println!(
            "skipped {} root tests (not root; run as root, or with CI=true to require them):",
            skipped.len()
        );
        for name in &skipped {
            println!("    {name}");
        }
    }
    let oracle = *lock(&SKIPPED_ORACLE);
    if oracle > 0 {
        println!("skipped {oracle} tests of the {ORACLE_OFF}");
    }
    conclusion.exit()
}

/// Locks a list of this module, also after a test thread panicked while holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passes() -> Result<(), Failed> {
        Ok(())
    }

    fn fails_at_ensure() -> Result<(), Failed> {
        let answer = 41;
        ensure!(answer == 42, "answer {answer}");
        Ok(())
    }

    fn fails_without_message() -> Result<(), Failed> {
        ensure!(1 + 1 == 3);
        Ok(())
    }

    #[test]
    fn module_name_drops_the_crate() {
        assert_eq!(module_name("kernel::space"), "space");
        assert_eq!(module_name("kernel::mkfs::inner"), "mkfs::inner");
        assert_eq!(module_name("lvm_cli"), "");
    }

    crate::register!(root: passes);
    crate::register!(oracle: passes);
    crate::register!(plain: fails_at_ensure);
    crate::register!(prefix "cli"; root: passes);
    crate::register!(table: table);

    fn table() -> Vec<Trial> {
        vec![plain(
            format!("{}::one", crate::trial_name!(passes)),
            passes,
        )]
    }

    #[test]
    fn trials_are_named_after_their_functions() {
        let trials = registered();
        let names: Vec<_> = trials.iter().map(|t| (t.kind(), t.name())).collect();
        assert_eq!(
            names,
            [
                ("root", "cli::passes"),
                ("", "harness::tests::fails_at_ensure"),
                ("oracle", "harness::tests::oracle::passes"),
                ("root", "harness::tests::passes"),
                ("", "harness::tests::passes::one"),
            ]
        );
        assert_eq!(
            crate::trial_name!(oracle: passes),
            "harness::tests::oracle::passes"
        );
        assert_eq!(crate::named!(passes).0, "passes");
    }

    #[test]
    fn ensure_names_the_place_and_the_condition() {
        let message = fails_at_ensure().unwrap_err().message().map(str::to_owned);
        let message = message.unwrap_or_default();
        assert!(message.starts_with(file!()), "{message}");
        assert!(message.ends_with(": answer 41"), "{message}");
        let message = fails_without_message()
            .unwrap_err()
            .message()
            .map(str::to_owned);
        assert!(message.unwrap_or_default().ends_with(": 1 + 1 == 3"));
    }
}
