//! Shared pieces of the LVM integration tests: loop-device sandboxes, the backend-independent
//! suite, and an independent `lvs`/`vgs` oracle. The harness (root gate, `ensure!`, `ctx`) is
//! `testkit::harness`.
#![allow(dead_code)]

pub mod daemon;
pub mod example;
pub mod fixture;
pub mod suite;

/// The first of `candidates` that exists (the first one if none does, so the error names it).
pub fn first_existing(candidates: &[&'static str]) -> &'static str {
    candidates
        .iter()
        .copied()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or(candidates[0])
}
