//! Why provisioning did not happen or stopped, in words that say what was done and how to
//! undo it.

use serde::Serialize;

/// Why provisioning did not happen or stopped.
#[derive(Debug, Clone, PartialEq, Serialize, thiserror::Error)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum ProvisionError {
    /// Refused before any change.
    #[error("refused: {reason}\nway out: {way_out}")]
    Refused {
        /// Why.
        reason: String,
        /// What to do.
        way_out: String,
    },
    /// A step failed after earlier ones changed the system.
    #[error("{}", failure_text(*step, *total, what, error, done))]
    Failed {
        /// The failed step (1-based).
        step: usize,
        /// How many steps there are.
        total: usize,
        /// The failed step, in words.
        what: String,
        /// The error.
        error: String,
        /// Steps done by this run, each with how to undo it.
        done: Vec<(String, String)>,
    },
    /// Stopped between two steps on SIGINT or SIGTERM.
    #[error("{}", stop_text(done))]
    Interrupted {
        /// Steps done by this run, each with how to undo it.
        done: Vec<(String, String)>,
    },
}

fn done_text(done: &[(String, String)]) -> String {
    if done.is_empty() {
        return "nothing was changed by this run".into();
    }
    let mut text = String::from("done by this run, and how to undo each (last first):");
    for (what, undo) in done.iter().rev() {
        text.push_str(&format!("\n  {what}: undo with {undo}"));
    }
    text
}

fn failure_text(
    step: usize,
    total: usize,
    what: &str,
    error: &str,
    done: &[(String, String)],
) -> String {
    format!(
        "step {step}/{total} ({what}) failed: {error}\n{}\nfix the cause and run provision again: it continues where it stopped",
        done_text(done)
    )
}

fn stop_text(done: &[(String, String)]) -> String {
    format!(
        "stopped on a signal between two steps\n{}\nrun provision again to continue",
        done_text(done)
    )
}

pub(crate) fn refuse(reason: impl Into<String>, way_out: impl Into<String>) -> ProvisionError {
    ProvisionError::Refused {
        reason: reason.into(),
        way_out: way_out.into(),
    }
}
