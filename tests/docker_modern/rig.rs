//! The three ways today's Docker stores images on btrfs, each as a rig: a btrfs made by our
//! mkfs on a loop device, the userland's dockerd on it, and for the system-style way a
//! containerd of the test's.

use crate::containerd::Containerd;
use crate::daemon::{Dockerd, Options};
use std::path::{Path, PathBuf};
use std::time::Duration;
use testkit::fixture::Scratch;
use testkit::harness::Failed;
use testkit::userland::Userland;

/// How Docker stores its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The legacy graphdriver: `{"storage-driver": "btrfs"}`, layers as subvolumes under
    /// `<data-root>/btrfs/subvolumes`, as 20.10 does.
    Legacy,
    /// The containerd image store on dockerd's own managed containerd
    /// (`features.containerd-snapshotter`): containerd's btrfs snapshotter under
    /// `<data-root>/containerd/daemon`.
    ManagedStore,
    /// The containerd image store on a containerd the system runs (`dockerd --containerd`):
    /// the snapshotter lives under containerd's own root.
    SystemContainerd,
}

impl Way {
    /// The `daemon.json` of this way.
    pub fn config(self) -> serde_json::Map<String, serde_json::Value> {
        let value = match self {
            Way::Legacy => serde_json::json!({ "storage-driver": "btrfs" }),
            Way::ManagedStore | Way::SystemContainerd => serde_json::json!({
                "storage-driver": "btrfs",
                "features": { "containerd-snapshotter": true },
            }),
        };
        match value {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("a JSON object literal"),
        }
    }
}

/// dockerd `Options` for `way` from `userland`, on `containerd` if given.
pub fn options(userland: &Userland, way: Way, containerd: Option<&Containerd>) -> Options {
    Options {
        userland: Some(userland.clone()),
        config: way.config(),
        containerd: containerd.map(Containerd::socket),
        tempdir_in: containerd.map(|c| c.dir().to_path_buf()),
        namespace_of: containerd.map(Containerd::pid),
    }
}

/// Where containerd's store of a rig is, as the host sees it.
#[derive(Debug, Clone)]
pub struct Store {
    /// containerd's root (the plugins' persistent data).
    pub root: PathBuf,
    /// containerd's gRPC socket.
    pub socket: PathBuf,
    /// A directory holding the socket, to bind for `ctr`.
    pub bind: PathBuf,
}

impl Store {
    /// The btrfs snapshotter's root: `snapshots/`, `active/`, `view/`, `metadata.db`.
    pub fn snapshotter(&self) -> PathBuf {
        self.root.join("io.containerd.snapshotter.v1.btrfs")
    }

    /// The content store (image blobs).
    pub fn content(&self) -> PathBuf {
        self.root.join("io.containerd.content.v1.content")
    }

    /// The metadata plugin's directory (`meta.db`).
    pub fn metadata(&self) -> PathBuf {
        self.root.join("io.containerd.metadata.v1.bolt")
    }
}

/// One way's rig; see the module docs.
pub struct Rig {
    // Field order is drop order: dockerd, then its containerd, then the filesystem.
    /// The userland's dockerd on the filesystem.
    pub docker: Dockerd,
    /// The system-style containerd, for [`Way::SystemContainerd`].
    pub containerd: Option<Containerd>,
    /// Our btrfs; its top level is the data root.
    pub scratch: Scratch,
    /// The userland the programs come from.
    pub userland: Userland,
    /// How images are stored.
    pub way: Way,
}

impl Rig {
    /// Starts dockerd for `way` on `scratch` (with `containerd` for the system-style way);
    /// also how long dockerd took to answer.
    pub fn start(
        userland: &Userland,
        way: Way,
        scratch: Scratch,
        containerd: Option<Containerd>,
    ) -> Result<(Self, Duration), Failed> {
        let (docker, took) =
            Dockerd::start_with(scratch.path(), options(userland, way, containerd.as_ref()))?;
        Ok((
            Rig {
                docker,
                containerd,
                scratch,
                userland: userland.clone(),
                way,
            },
            took,
        ))
    }

    /// The data root: the filesystem's top level.
    pub fn root(&self) -> &Path {
        self.scratch.path()
    }

    /// The containerd store, for the snapshotter ways.
    pub fn store(&self) -> Option<Store> {
        match (self.way, &self.containerd) {
            (Way::Legacy, _) => None,
            (_, Some(c)) => Some(Store {
                root: c.root(),
                socket: c.socket(),
                bind: c.dir().to_path_buf(),
            }),
            (_, None) => Some(Store {
                root: self.root().join("containerd/daemon"),
                socket: self.docker.exec_root().join("containerd/containerd.sock"),
                bind: self.docker.config_dir().to_path_buf(),
            }),
        }
    }

    /// Stops dockerd, then containerd, each by its pid, and tears both down, checked: no
    /// process mentioning their tempdirs, no mount below them or below the data root is left.
    /// How long the stops took.
    pub fn stop_and_close(self) -> Result<(Duration, Duration), Failed> {
        let Rig {
            mut docker,
            containerd,
            scratch,
            ..
        } = self;
        let took = docker.stop()?;
        let mounts = docker.mounts();
        testkit::ensure!(
            mounts.is_empty(),
            "mounts on the host after dockerd stopped: {mounts:?} (its mounts belong in its namespace)"
        );
        docker.close()?;
        let mut containerd_took = Duration::ZERO;
        if let Some(mut c) = containerd {
            containerd_took = c.stop()?;
            c.close()?;
        }
        drop(scratch);
        Ok((took, containerd_took))
    }
}
