//! The text table of `dockroot du`.

use super::{short, DuReport, Space, Store};
use std::fmt::Write;

fn row(out: &mut String, what: &str, detail: &str, s: &Space) {
    let _ = writeln!(
        out,
        "  {what:<14} {detail:<28} {:>11} {:>11} {:>11} {:>11}",
        s.referenced.to_string(),
        s.frees.to_string(),
        s.shared.to_string(),
        s.logical.to_string()
    );
}

fn header(out: &mut String, title: &str, detail: &str) {
    let _ = writeln!(
        out,
        "{title:<16} {detail:<28} {:>11} {:>11} {:>11} {:>11}",
        "REFERENCED", "FREES", "SHARED", "LOGICAL"
    );
}

/// How many subvolume rows the table shows (`--json` has them all).
pub const SHOWN_SUBVOLUMES: usize = 20;

/// The report as a table: images, containers, orphans, the largest subvolumes, the total.
pub fn render(r: &DuReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "dockroot du {} ({} store, {} layer subvolumes): {}",
        r.path.display(),
        r.store,
        r.subvolumes.len(),
        r.counts
    );
    let _ = writeln!(out);
    header(&mut out, "IMAGE", "TAGS (OWN/ALL LAYERS)");
    for i in &r.images {
        let tags = if i.image.tags.is_empty() {
            "<none>".to_string()
        } else {
            i.image.tags.join(",")
        };
        let detail = format!("{tags} ({}/{})", i.own_layers, i.image.layers.len());
        row(&mut out, short(&i.image.id), &detail, &i.space);
    }
    let _ = writeln!(out);
    header(&mut out, "CONTAINER", "NAME (IMAGE)");
    for c in &r.containers {
        let detail = format!(
            "{} ({})",
            c.container.name.as_deref().unwrap_or("-"),
            c.container.image.as_deref().map(short).unwrap_or("-")
        );
        row(&mut out, short(&c.container.id), &detail, &c.space);
    }
    let _ = writeln!(out);
    let orphans = r
        .subvolumes
        .iter()
        .filter(|s| s.roles.contains(&super::Role::Orphan))
        .count();
    header(&mut out, "ORPHANS", "");
    row(
        &mut out,
        &orphans.to_string(),
        "all orphans together",
        &r.orphans,
    );
    let _ = writeln!(out);
    header(&mut out, "SUBVOLUME", "ROLE");
    for s in r.subvolumes.iter().take(SHOWN_SUBVOLUMES) {
        let roles: Vec<String> = s.roles.iter().map(ToString::to_string).collect();
        let roles = if roles.is_empty() {
            "-".to_string()
        } else {
            roles.join(", ")
        };
        row(&mut out, subvolume_label(r, &s.name), &roles, &s.space);
    }
    if r.subvolumes.len() > SHOWN_SUBVOLUMES {
        let _ = writeln!(
            out,
            "  ... and {} more (--json lists every one)",
            r.subvolumes.len() - SHOWN_SUBVOLUMES
        );
    }
    for u in &r.unmeasured {
        let _ = writeln!(
            out,
            "  {:<14} not measured: {}",
            subvolume_label(r, &u.name),
            u.reason
        );
    }
    let _ = writeln!(out);
    header(&mut out, "TOTAL", "");
    row(&mut out, "", "every layer subvolume", &r.total);
    for note in &r.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

/// A subvolume as the table names it: the graph driver's ids shortened as `docker` shortens
/// ids, the snapshotter's `snapshots/<n>` whole.
fn subvolume_label<'a>(r: &DuReport, name: &'a str) -> &'a str {
    match r.store {
        Store::Graphdriver => short(name),
        Store::Containerd => name,
    }
}
