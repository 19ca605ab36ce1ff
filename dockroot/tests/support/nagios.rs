//! What a monitoring system (Nagios, Icinga, Naemon) makes of a plugin's output: the exit
//! code, the status line, and the performance data with its thresholds in the plugin range
//! syntax (`[@][start:][end]`, alert outside the range, or inside with `@`).

use testkit::harness::Failed;

/// A threshold range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// Lower bound.
    pub start: f64,
    /// Upper bound.
    pub end: f64,
    /// `@`: alert inside instead of outside.
    pub inside: bool,
}

impl Range {
    /// Parses `10`, `10:`, `~:10`, `10:20`, `@10:20`.
    pub fn parse(text: &str) -> Result<Range, String> {
        let (inside, body) = match text.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let num = |s: &str| {
            s.parse::<f64>()
                .map_err(|_| format!("bad number {s:?} in range {text:?}"))
        };
        let (start, end) = match body.split_once(':') {
            Some((s, e)) => (
                if s == "~" { f64::NEG_INFINITY } else { num(s)? },
                if e.is_empty() { f64::INFINITY } else { num(e)? },
            ),
            None => (0.0, num(body)?),
        };
        Ok(Range { start, end, inside })
    }

    /// Whether `value` raises the alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        within == self.inside
    }
}

/// One performance-data item.
#[derive(Debug, Clone, PartialEq)]
pub struct Perf {
    /// Its label.
    pub label: String,
    /// Its value.
    pub value: f64,
    /// Its unit of measurement (`B`, `%`, ``).
    pub uom: String,
    /// Warning range.
    pub warn: Option<Range>,
    /// Critical range.
    pub crit: Option<Range>,
    /// Minimum.
    pub min: Option<f64>,
    /// Maximum.
    pub max: Option<f64>,
}

impl Perf {
    /// The state this item alone stands for: 2 critical, 1 warning, 0 ok.
    pub fn state(&self) -> u8 {
        if self.crit.is_some_and(|r| r.alerts(self.value)) {
            2
        } else if self.warn.is_some_and(|r| r.alerts(self.value)) {
            1
        } else {
            0
        }
    }
}

/// A parsed plugin output.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginOutput {
    /// `OK`, `WARNING`, `CRITICAL` or `UNKNOWN`, from the status line.
    pub status: String,
    /// The text after `STATUS - `.
    pub text: String,
    /// The performance data.
    pub perf: Vec<Perf>,
    /// The lines after the first (long output).
    pub long: Vec<String>,
}

impl PluginOutput {
    /// The item labelled `label`.
    pub fn get(&self, label: &str) -> Result<&Perf, Failed> {
        self.perf
            .iter()
            .find(|p| p.label == label)
            .ok_or_else(|| format!("no perfdata {label} in {:?}", self.perf).into())
    }
}

fn perf_item(item: &str) -> Result<Perf, String> {
    let (label, rest) = item.rsplit_once('=').ok_or(format!("no = in {item:?}"))?;
    let label = label.trim_matches('\'').to_string();
    let mut fields = rest.split(';');
    let value_uom = fields.next().unwrap_or("");
    let split = value_uom
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .unwrap_or(value_uom.len());
    let value = value_uom[..split]
        .parse()
        .map_err(|_| format!("bad value in {item:?}"))?;
    let uom = value_uom[split..].to_string();
    let range = |f: Option<&str>| -> Result<Option<Range>, String> {
        match f {
            None | Some("") => Ok(None),
            Some(t) => Range::parse(t).map(Some),
        }
    };
    let number = |f: Option<&str>| -> Result<Option<f64>, String> {
        match f {
            None | Some("") => Ok(None),
            Some(t) => t
                .parse()
                .map(Some)
                .map_err(|_| format!("bad bound {t:?} in {item:?}")),
        }
    };
    let warn = range(fields.next())?;
    let crit = range(fields.next())?;
    let min = number(fields.next())?;
    let max = number(fields.next())?;
    Ok(Perf {
        label,
        value,
        uom,
        warn,
        crit,
        min,
        max,
    })
}

/// Parses the plugin output `text` of a plugin named `name`.
pub fn parse(name: &str, text: &str) -> Result<PluginOutput, Failed> {
    let mut lines = text.lines();
    let first = lines.next().ok_or("empty plugin output")?;
    let (head, perf) = first.split_once(" | ").unwrap_or((first, ""));
    let head = head
        .strip_prefix(name)
        .and_then(|h| h.strip_prefix(' '))
        .ok_or_else(|| format!("status line does not start with {name}: {first:?}"))?;
    let (status, text) = head
        .split_once(" - ")
        .ok_or_else(|| format!("no `STATUS - text` in {first:?}"))?;
    let perf = perf
        .split_whitespace()
        .map(perf_item)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PluginOutput {
        status: status.to_string(),
        text: text.to_string(),
        perf,
        long: lines.map(str::to_string).collect(),
    })
}

/// The exit code a status name stands for.
pub fn code_of(status: &str) -> Option<i32> {
    ["OK", "WARNING", "CRITICAL", "UNKNOWN"]
        .iter()
        .position(|s| *s == status)
        .map(|p| p as i32)
}
