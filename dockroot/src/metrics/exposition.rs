//! The Prometheus text exposition format (version 0.0.4): metric families with `# HELP` and
//! `# TYPE`, samples with escaped label values.

use std::fmt::Write;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A value that goes up and down.
    Gauge,
    /// A value that only goes up (its name ends in `_total`).
    Counter,
}

/// One family: a name, its help, its type, its samples.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The metric name.
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Its type.
    pub kind: Kind,
    /// Label pairs and values.
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

/// A set of families, rendered in the order they were first used.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a sample to family `name` (created with `help` and `kind` on first use).
    pub fn add(&mut self, name: &str, kind: Kind, help: &str, labels: &[(&str, &str)], value: f64) {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(f) => f.samples.push((labels, value)),
            None => self.families.push(Family {
                name: name.into(),
                help: help.into(),
                kind,
                samples: vec![(labels, value)],
            }),
        }
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, Kind::Gauge, help, labels, value);
    }

    /// A counter sample.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.add(name, Kind::Counter, help, labels, value);
    }

    /// The families.
    pub fn families(&self) -> &[Family] {
        &self.families
    }

    /// The text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let kind = match f.kind {
                Kind::Gauge => "gauge",
                Kind::Counter => "counter",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, value) in &f.samples {
                out.push_str(&f.name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", number(*value));
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: whole numbers without a fraction, `NaN`, `+Inf`, `-Inf`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_families_with_escaped_labels() {
        let mut e = Exposition::new();
        e.gauge("a_bytes", "Bytes.", &[("path", "/x\"y\\z\n")], 1024.0);
        e.gauge("a_bytes", "Bytes.", &[("path", "/b")], 0.5);
        e.counter("b_total", "Count.", &[], f64::NAN);
        assert_eq!(
            e.render(),
            "# HELP a_bytes Bytes.\n# TYPE a_bytes gauge\na_bytes{path=\"/x\\\"y\\\\z\\n\"} 1024\na_bytes{path=\"/b\"} 0.5\n# HELP b_total Count.\n# TYPE b_total counter\nb_total NaN\n"
        );
    }
}
