//! The scenario's measured table: each step, its outcome and its wall time, printed when the
//! report drops (at the end, also after a failed step or a panic) and written to
//! `$CARGO_TARGET_TMPDIR/<name>.json`.

use std::time::Instant;
use testkit::harness::Failed;

/// One row: a step, what it showed, how long it took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub step: String,
    pub outcome: String,
    pub seconds: f64,
}

/// The rows so far, and facts worth keeping that are not a step (versions, counts).
pub struct Report {
    name: &'static str,
    started: Instant,
    rows: Vec<Row>,
    facts: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    /// An empty report; the clock starts now.
    pub fn new(name: &'static str) -> Self {
        Report {
            name,
            started: Instant::now(),
            rows: Vec::new(),
            facts: serde_json::Map::new(),
        }
    }

    /// Runs one step, timed; `f` returns the step's value and its outcome in words. A failing
    /// step is recorded as such before the error goes up.
    pub fn step<T>(
        &mut self,
        step: &str,
        f: impl FnOnce(&mut Self) -> Result<(T, String), Failed>,
    ) -> Result<T, Failed> {
        let started = Instant::now();
        let result = f(self);
        let seconds = started.elapsed().as_secs_f64();
        let (value, outcome) = match result {
            Ok((value, outcome)) => (Ok(value), outcome),
            Err(e) => {
                let message = e.message().map(str::to_string).unwrap_or_default();
                let first = message.lines().next().unwrap_or("").to_string();
                (Err(e), format!("FAILED: {first}"))
            }
        };
        self.rows.push(Row {
            step: step.to_string(),
            outcome,
            seconds,
        });
        value
    }

    /// Records a fact (shown after the table and kept in the JSON).
    pub fn fact(&mut self, key: &str, value: impl Into<serde_json::Value>) {
        self.facts.insert(key.to_string(), value.into());
    }

    /// Prints the table (Markdown) and writes the JSON report.
    fn finish(&self) {
        let total = self.started.elapsed().as_secs_f64();
        println!("\n| step | outcome | time |\n|---|---|---:|");
        for r in &self.rows {
            println!("| {} | {} | {:.1} s |", r.step, r.outcome, r.seconds);
        }
        println!("| **whole tier** | | **{total:.1} s** |");
        for (k, v) in &self.facts {
            println!("{k}: {v}");
        }
        let json = serde_json::json!({
            "rows": self.rows,
            "facts": self.facts,
            "total_seconds": total,
        });
        let out =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{}.json", self.name));
        match serde_json::to_string_pretty(&json) {
            Ok(text) => {
                if let Err(e) = std::fs::write(&out, text) {
                    println!("could not write {}: {e}", out.display());
                } else {
                    println!("report: {}", out.display());
                }
            }
            Err(e) => println!("could not serialise the report: {e}"),
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        self.finish();
    }
}
