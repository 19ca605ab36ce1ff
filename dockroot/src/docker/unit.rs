//! dockerd's command line as systemd would start it: `docker.service` and its drop-ins, read as
//! systemd reads them, so that what only the unit says (Docker CE's and Debian's
//! `--containerd=/run/containerd/containerd.sock`) is known while dockerd is stopped.
//!
//! systemd's rules followed (systemd.unit(5), systemd.service(5), systemd.exec(5)):
//!
//! * the unit file is the first `docker.service` on the search path (`/etc` masks `/lib`);
//!   drop-ins are every `docker.service.d/*.conf` on the path, applied in file-name order, a
//!   name in an earlier directory hiding the same name in a later one;
//! * an empty `ExecStart=` clears the earlier ones; dockerd's unit has one (`Type=notify`),
//!   the last one counts; a leading `@`, `-`, `:`, `+` or `!` of the program is not part of it;
//! * words split on spaces, with `"…"` and `'…'` quoting and backslash escapes; `${VAR}` is
//!   replaced as one word, `$VAR` standing alone splits into words; the values come from
//!   `Environment=` and `EnvironmentFile=` (`-` before the path: optional), read in order.
//!
//! Not followed: specifiers (`%n`…), line continuations in the environment files, and units
//! generated at boot (`/run/systemd/generator*`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The unit dockerd runs as.
pub const DOCKER_SERVICE: &str = "docker.service";

/// systemd's system unit directories after the local one, in its order.
pub const VENDOR_UNIT_DIRS: [&str; 4] = [
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

/// The directories `docker.service` is looked up in: `unit_dir`, then — when `unit_dir` is
/// systemd's own `/etc/systemd/system` — the vendor directories. Another `unit_dir` (a test,
/// a chroot being prepared) is the only one read.
pub fn search_path(unit_dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![unit_dir.to_path_buf()];
    if unit_dir == Path::new("/etc/systemd/system") {
        out.extend(VENDOR_UNIT_DIRS.iter().map(PathBuf::from));
    }
    out
}

/// dockerd's start command as its unit says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCommand {
    /// The unit file and the drop-ins that were applied, in order.
    pub files: Vec<PathBuf>,
    /// The program and its arguments, variables replaced.
    pub argv: Vec<String>,
}

impl ServiceCommand {
    /// The value of the long option `name` (`--containerd`), as `--name=V` or `--name V`;
    /// the last one counts, as for Go's flag parsing.
    pub fn option(&self, name: &str) -> Option<&str> {
        let mut found = None;
        let mut words = self.argv.iter().skip(1);
        while let Some(w) = words.next() {
            if let Some(v) = w.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
                found = Some(v);
            } else if w == name {
                found = words.next().map(String::as_str);
            }
        }
        found
    }
}

/// The lines `(key, value)` of the `[Service]` section of a unit file.
fn service_lines(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut in_service = false;
    let mut pending = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        // A trailing backslash continues the line.
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            in_service = line == "[Service]";
            continue;
        }
        if !in_service {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

/// Splits `text` into words: spaces separate, quotes group, backslash escapes. Each word is
/// returned with whether it was quoted (quoted words do not split on variables).
fn words(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => {
                if started {
                    out.push((std::mem::take(&mut word), quoted));
                    started = false;
                    quoted = false;
                }
            }
            '"' | '\'' => {
                started = true;
                quoted = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    word.push(q);
                }
            }
            '\\' => {
                started = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            _ => {
                started = true;
                word.push(c);
            }
        }
    }
    if started {
        out.push((word, quoted));
    }
    out
}

/// The `KEY=value` assignments of an `Environment=` line or an environment file's line.
fn assignments(text: &str, env: &mut BTreeMap<String, String>) {
    for (w, _) in words(text) {
        if let Some((k, v)) = w.split_once('=') {
            env.insert(k.to_string(), v.to_string());
        }
    }
}

/// Reads an `EnvironmentFile=` into `env`; false when a required file is missing.
fn environment_file(spec: &str, env: &mut BTreeMap<String, String>) -> bool {
    let (optional, path) = match spec.strip_prefix('-') {
        Some(p) => (true, p),
        None => (false, spec),
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            for line in text.lines() {
                let line = line.trim();
                if !line.is_empty() && !line.starts_with('#') && !line.starts_with(';') {
                    assignments(line, env);
                }
            }
            true
        }
        Err(_) => optional,
    }
}

/// Replaces `${VAR}` in `word` (one word); a word that is exactly `$VAR` splits on spaces.
fn expand(word: &str, quoted: bool, env: &BTreeMap<String, String>) -> Vec<String> {
    if !quoted {
        if let Some(name) = word.strip_prefix('$') {
            if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return env
                    .get(name)
                    .map(|v| v.split_whitespace().map(str::to_string).collect())
                    .unwrap_or_default();
            }
        }
    }
    let mut out = String::new();
    let mut rest = word;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(end) => {
                let name = &rest[i + 2..i + 2 + end];
                out.push_str(env.get(name).map_or("", String::as_str));
                rest = &rest[i + 3 + end..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    vec![out]
}

/// The unit file and its drop-ins, in the order systemd applies them.
fn unit_files(search: &[PathBuf], name: &str) -> Vec<PathBuf> {
    let Some(main) = search.iter().map(|d| d.join(name)).find(|p| p.is_file()) else {
        return Vec::new();
    };
    let mut dropins: BTreeMap<String, PathBuf> = BTreeMap::new();
    for dir in search.iter().rev() {
        let Ok(list) = std::fs::read_dir(dir.join(format!("{name}.d"))) else {
            continue;
        };
        for e in list.flatten() {
            let file = e.file_name().to_string_lossy().into_owned();
            if file.ends_with(".conf") {
                dropins.insert(file, e.path());
            }
        }
    }
    std::iter::once(main).chain(dropins.into_values()).collect()
}

/// dockerd's start command from `docker.service` on `search` (see [`search_path`]); None
/// when there is no such unit, or it has no `ExecStart=`.
pub fn docker_service(search: &[PathBuf]) -> Option<ServiceCommand> {
    service_command(search, DOCKER_SERVICE)
}

/// The start command of the unit `name` on `search`.
pub fn service_command(search: &[PathBuf], name: &str) -> Option<ServiceCommand> {
    let files = unit_files(search, name);
    let mut env = BTreeMap::new();
    let mut exec: Option<String> = None;
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (key, value) in service_lines(&text) {
            match key.as_str() {
                "ExecStart" if value.is_empty() => exec = None,
                "ExecStart" => exec = Some(value),
                "Environment" => assignments(&value, &mut env),
                "EnvironmentFile" => {
                    environment_file(&value, &mut env);
                }
                _ => {}
            }
        }
    }
    let exec = exec?;
    let mut argv: Vec<String> = words(&exec)
        .into_iter()
        .flat_map(|(w, quoted)| expand(&w, quoted, &env))
        .collect();
    if let Some(program) = argv.first_mut() {
        *program = program
            .trim_start_matches(['@', '-', ':', '+', '!'])
            .to_string();
    }
    Some(ServiceCommand { files, argv })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Debian's docker.io unit (its ExecStart and EnvironmentFile lines as shipped).
    const DEBIAN: &str = "[Unit]\nDescription=Docker Application Container Engine\n\n[Service]\nType=notify\nEnvironmentFile=-/nonexistent/default/docker\nExecStart=/usr/sbin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock $DOCKER_OPTS\nExecReload=/bin/kill -s HUP $MAINPID\n";

    #[test]
    fn debian_units_containerd_flag_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let vendor = dir.path().join("lib");
        write(&vendor.join(DOCKER_SERVICE), DEBIAN);
        let c = docker_service(&[dir.path().join("etc"), vendor.clone()]).unwrap();
        assert_eq!(
            c.argv,
            [
                "/usr/sbin/dockerd",
                "-H",
                "fd://",
                "--containerd=/run/containerd/containerd.sock"
            ]
        );
        assert_eq!(
            c.option("--containerd"),
            Some("/run/containerd/containerd.sock")
        );
        assert_eq!(c.option("-H"), Some("fd://"));
        assert_eq!(c.option("--data-root"), None);
        assert_eq!(c.files, [vendor.join(DOCKER_SERVICE)]);
    }

    #[test]
    fn drop_ins_clear_and_replace_exec_start_with_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let (etc, lib) = (dir.path().join("etc"), dir.path().join("lib"));
        let env_file = dir.path().join("default-docker");
        write(
            &env_file,
            "# options\nDOCKER_OPTS=\"--containerd /srv/c.sock --debug\"\n",
        );
        write(&lib.join(DOCKER_SERVICE), DEBIAN);
        // The same drop-in name in /etc hides the vendor's; files apply in name order.
        write(
            &lib.join("docker.service.d/10-x.conf"),
            "[Service]\nExecStart=\nExecStart=/bad\n",
        );
        write(
            &etc.join("docker.service.d/10-x.conf"),
            &format!(
                "[Service]\nEnvironmentFile={}\nEnvironment=\"ROOT=/data root\"\nExecStart=\nExecStart=-/usr/bin/dockerd --data-root \"${{ROOT}}\" $DOCKER_OPTS \\\n  --log-level=warn\n",
                env_file.display()
            ),
        );
        write(
            &etc.join("docker.service.d/20-y.conf"),
            "[Unit]\nExecStart=/ignored-outside-service\n",
        );
        let c = docker_service(&[etc.clone(), lib.clone()]).unwrap();
        assert_eq!(
            c.argv,
            [
                "/usr/bin/dockerd",
                "--data-root",
                "/data root",
                "--containerd",
                "/srv/c.sock",
                "--debug",
                "--log-level=warn"
            ]
        );
        assert_eq!(c.option("--containerd"), Some("/srv/c.sock"));
        assert_eq!(c.option("--data-root"), Some("/data root"));
        assert_eq!(c.files.len(), 3);
        // An /etc unit masks the vendor's; cleared without a new ExecStart: none.
        write(&etc.join(DOCKER_SERVICE), "[Service]\nExecStart=/x\n");
        write(
            &etc.join("docker.service.d/30-z.conf"),
            "[Service]\nExecStart=\n",
        );
        assert_eq!(docker_service(&[etc, lib]), None);
    }

    #[test]
    fn only_systemds_own_directory_adds_the_vendor_directories() {
        assert_eq!(search_path(Path::new("/etc/systemd/system")).len(), 5);
        assert_eq!(
            search_path(Path::new("/tmp/units")),
            [PathBuf::from("/tmp/units")]
        );
    }
}
