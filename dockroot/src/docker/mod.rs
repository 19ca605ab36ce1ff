//! What this tool knows about Docker: its configuration file, its Engine API, whether the
//! daemon runs, and the btrfs layout of its data root. None of it lives in the storage crates.

pub mod containerd;
pub mod daemon;
pub mod daemon_json;
pub mod engine;
pub mod layout;
pub mod store;
pub mod unit;

pub use daemon::DaemonPresence;
pub use daemon_json::DaemonJson;
pub use engine::{Engine, EngineError, Info};
pub use layout::{LayerReport, Reference, StaleMount};
pub use store::{ImageStore, StoreChoice};
