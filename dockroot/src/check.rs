//! `check`: a report in the Nagios/Icinga plugin format: one status line, `|`, performance
//! data (`'label'=value[UOM];warn;crit;min;max`), then one line per check.
//!
//! Thresholds follow the plugin range syntax: `N` alerts above N, `N:` alerts below N.

use crate::report::{Direction, Figure, Report, Status, Unit};

/// The plugin's name at the start of the status line.
pub const NAME: &str = "DOCKROOT";

fn number(value: f64, unit: Unit) -> String {
    let whole = value.round();
    if (unit == Unit::Bytes || (value - whole).abs() < 0.005) && whole.abs() < 1e18 {
        format!("{}", whole as i64)
    } else {
        format!("{value:.2}")
    }
}

fn threshold(value: Option<f64>, unit: Unit, direction: Direction) -> String {
    match value {
        Some(v) if v.is_finite() => match direction {
            Direction::Above => number(v, unit),
            Direction::Below => format!("{}:", number(v, unit)),
        },
        _ => String::new(),
    }
}

/// One performance-data item.
pub fn perfdata(f: &Figure) -> String {
    let opt = |v: Option<f64>| v.map(|v| number(v, f.unit)).unwrap_or_default();
    let item = format!(
        "{}={}{};{};{};{};{}",
        f.label,
        number(f.value, f.unit),
        f.unit.uom(),
        threshold(f.warn, f.unit, f.direction),
        threshold(f.crit, f.unit, f.direction),
        opt(f.min),
        opt(f.max)
    );
    item.trim_end_matches(';').to_string()
}

/// The whole plugin output (several lines, the first one is the status line).
pub fn render(report: &Report) -> String {
    let mut problems: Vec<&str> = Vec::new();
    for c in report.checks.iter().filter(|c| c.status != Status::Ok) {
        if !problems.contains(&c.summary.as_str()) {
            problems.push(&c.summary);
        }
    }
    let text = if problems.is_empty() {
        report
            .get("space.used")
            .map(|c| c.summary.clone())
            .unwrap_or_else(|| "all checks ok".into())
    } else {
        problems.join("; ")
    };
    let perf: Vec<String> = report
        .checks
        .iter()
        .flat_map(|c| c.figures.iter())
        .map(perfdata)
        .collect();
    let mut out = format!(
        "{NAME} {} - {}: {} | {}",
        report.status.label(),
        report.path.display(),
        text.replace('|', "/"),
        perf.join(" ")
    );
    for c in &report.checks {
        out.push_str(&format!(
            "\n[{}] {}: {}",
            c.status.label(),
            c.id,
            c.summary.replace('|', "/")
        ));
        if !c.action.is_empty() {
            out.push_str(&format!(" -- {}", c.action.replace('|', "/")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Check;

    #[test]
    fn renders_status_line_and_perfdata() {
        let report = Report::new(
            "/var/lib/docker",
            vec![
                Check::new("space.used", Status::Warning, "data 85.0 % used")
                    .figure(Figure::bytes("used", 850, Some(1000)).alert_above(800.0, 900.0)),
                Check::ok("space.unallocated", "lots").figure(
                    Figure::bytes("unallocated", 500, Some(1000)).alert_below(300.0, 200.0),
                ),
            ],
        );
        let out = render(&report);
        let first = out.lines().next().unwrap();
        assert_eq!(
            first,
            "DOCKROOT WARNING - /var/lib/docker: data 85.0 % used | used=850B;800;900;0;1000 unallocated=500B;300:;200:;0;1000"
        );
        assert!(out.contains("\n[OK] space.unallocated: lots"));
    }
}
