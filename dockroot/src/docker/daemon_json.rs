//! dockerd's configuration file, `daemon.json`: read it, set `"storage-driver"`, keep every
//! other key (in its order), write it back atomically with a backup of the old file.

use crate::backup::backup;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// The file name inside Docker's configuration directory.
pub const FILE_NAME: &str = "daemon.json";

/// The key that selects the storage driver (with the containerd image store: the snapshotter).
pub const STORAGE_DRIVER: &str = "storage-driver";

/// The object of feature switches.
pub const FEATURES: &str = "features";

/// Why daemon.json could not be used.
#[derive(Debug, thiserror::Error)]
pub enum DaemonJsonError {
    /// It could not be read or written.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// read or write.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not a JSON object.
    #[error("{} is not valid: {reason}; fix it by hand (dockerd would not start with it either), then run again", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// daemon.json as read.
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonJson {
    /// Where it lives.
    pub path: PathBuf,
    /// Whether the file exists (a missing file means an empty object).
    pub exists: bool,
    /// Its keys, in file order.
    pub keys: Map<String, Value>,
}

impl DaemonJson {
    /// Reads `dir/daemon.json`; a missing file is an empty configuration.
    pub fn read(dir: &Path) -> Result<DaemonJson, DaemonJsonError> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(DaemonJson {
                    path,
                    exists: false,
                    keys: Map::new(),
                })
            }
            Err(source) => {
                return Err(DaemonJsonError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        // dockerd accepts an empty file as no configuration.
        if text.trim().is_empty() {
            return Ok(DaemonJson {
                path,
                exists: true,
                keys: Map::new(),
            });
        }
        match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(keys)) => Ok(DaemonJson {
                path,
                exists: true,
                keys,
            }),
            Ok(other) => Err(DaemonJsonError::Invalid {
                path,
                reason: format!("it holds a JSON {} instead of an object", kind(&other)),
            }),
            Err(e) => Err(DaemonJsonError::Invalid {
                path,
                reason: e.to_string(),
            }),
        }
    }

    /// The configured storage driver, if the key is set to a string.
    pub fn storage_driver(&self) -> Option<&str> {
        self.keys.get(STORAGE_DRIVER).and_then(Value::as_str)
    }

    /// Whether the containerd image store is switched on (`"features": {"containerd-snapshotter":
    /// true}`): image layers then live in containerd's snapshotter, not in the graph driver.
    pub fn containerd_snapshotter(&self) -> bool {
        self.feature("containerd-snapshotter").unwrap_or(false)
    }

    /// A boolean under `"features"`, if it is set to one.
    pub fn feature(&self, name: &str) -> Option<bool> {
        self.keys
            .get(FEATURES)
            .and_then(|f| f.get(name))
            .and_then(Value::as_bool)
    }

    /// Sets a boolean under `"features"` (creating the object, keeping its other keys); returns
    /// whether that changed anything. A `"features"` that is not an object is replaced.
    pub fn set_feature(&mut self, name: &str, enabled: bool) -> bool {
        if self.feature(name) == Some(enabled) {
            return false;
        }
        let features = self
            .keys
            .entry(FEATURES)
            .or_insert_with(|| Value::Object(Map::new()));
        if !features.is_object() {
            *features = Value::Object(Map::new());
        }
        if let Value::Object(map) = features {
            map.insert(name.to_string(), Value::Bool(enabled));
        }
        true
    }

    /// Sets the storage driver; returns whether that changed anything.
    pub fn set_storage_driver(&mut self, driver: &str) -> bool {
        if self.storage_driver() == Some(driver) {
            return false;
        }
        self.keys
            .insert(STORAGE_DRIVER.to_string(), Value::String(driver.into()));
        true
    }

    /// The file's new text: pretty-printed, keys in their order, a final newline.
    pub fn render(&self) -> String {
        let mut text = serde_json::to_string_pretty(&Value::Object(self.keys.clone()))
            .expect("a JSON object serialises");
        text.push('\n');
        text
    }

    /// Writes the file atomically, first copying an existing one to a backup; returns the
    /// backup's path.
    pub fn write(&self) -> Result<Option<PathBuf>, DaemonJsonError> {
        let io = |op, source| DaemonJsonError::Io {
            op,
            path: self.path.clone(),
            source,
        };
        let backup = if self.exists {
            Some(backup(&self.path).map_err(|e| io("back up", e))?)
        } else {
            None
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        opskit::write_atomically(&self.path, self.render().as_bytes(), 0o644)
            .map_err(|e| io("write", e))?;
        Ok(backup)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_the_driver_keeping_other_keys_in_order_with_a_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let old = r#"{"log-driver": "journald", "storage-driver": "overlay2", "log-opts": {"tag": "{{.Name}}"}, "debug": true}"#;
        std::fs::write(&path, old).unwrap();
        let mut config = DaemonJson::read(dir.path()).unwrap();
        assert_eq!(config.storage_driver(), Some("overlay2"));
        assert!(config.set_storage_driver("btrfs"));
        assert!(!config.set_storage_driver("btrfs"));
        let backup = config.write().unwrap().expect("a backup");
        assert_eq!(std::fs::read_to_string(&backup).unwrap(), old);
        let text = std::fs::read_to_string(&path).unwrap();
        let keys: Vec<String> = serde_json::from_str::<Map<String, Value>>(&text)
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys, ["log-driver", "storage-driver", "log-opts", "debug"]);
        let again = DaemonJson::read(dir.path()).unwrap();
        assert_eq!(again.storage_driver(), Some("btrfs"));
        assert_eq!(again.keys["log-opts"]["tag"], "{{.Name}}");
    }

    #[test]
    fn missing_and_empty_files_are_empty_configurations() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = DaemonJson::read(&dir.path().join("docker")).unwrap();
        assert!(!config.exists && config.storage_driver().is_none());
        assert!(config.set_storage_driver("btrfs"));
        assert_eq!(config.write().unwrap(), None);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("docker").join(FILE_NAME)).unwrap(),
            "{\n  \"storage-driver\": \"btrfs\"\n}\n"
        );
        std::fs::write(dir.path().join(FILE_NAME), "  \n").unwrap();
        assert!(DaemonJson::read(dir.path()).unwrap().keys.is_empty());
    }

    #[test]
    fn invalid_files_are_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), "{\"storage-driver\": ").unwrap();
        let e = DaemonJson::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("not valid") && e.contains("fix it"), "{e}");
        std::fs::write(dir.path().join(FILE_NAME), "[1]").unwrap();
        let e = DaemonJson::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("array"), "{e}");
    }

    #[test]
    fn reads_the_containerd_image_store_switch() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(FILE_NAME),
            r#"{"features": {"containerd-snapshotter": true}}"#,
        )
        .unwrap();
        let mut config = DaemonJson::read(dir.path()).unwrap();
        assert!(config.containerd_snapshotter());
        assert!(config.set_feature("containerd-snapshotter", false));
        assert!(!config.set_feature("containerd-snapshotter", false));
        assert_eq!(config.feature("containerd-snapshotter"), Some(false));
        config.keys.insert(FEATURES.into(), Value::Bool(true));
        assert!(config.set_feature("containerd-snapshotter", true));
        assert_eq!(
            config.render(),
            "{\n  \"features\": {\n    \"containerd-snapshotter\": true\n  }\n}\n"
        );
    }
}
