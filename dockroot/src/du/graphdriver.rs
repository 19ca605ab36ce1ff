//! The [`LayerMap`] of the btrfs graph driver's layer store (Docker without the containerd
//! image store), from the files moby writes:
//!
//! * images: `image/btrfs/imagedb/content/sha256/<id>` (the image config: `rootfs.diff_ids`,
//!   bottom first), tags from `image/btrfs/repositories.json`
//!   (`{"Repositories": {"busybox": {"busybox:latest": "sha256:<id>"}}}`);
//! * layers: the chain ids of the diff ids (`chain[0] = diff[0]`,
//!   `chain[i] = sha256("<chain[i-1]> <diff[i]>")`, moby's `layer.CreateChainID`), each one's
//!   subvolume in `layerdb/sha256/<chain>/cache-id`;
//! * containers, orphans, layers being removed and foreign subvolumes as
//!   [`crate::docker::layout`] reads them (its rules are moby's own).

use super::{Container, Image, Layer, LayerMap, Role, Store};
use crate::docker::layout::{self, Reference};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::Path;

/// Where the image configs are, below the data root.
pub const IMAGEDB_DIR: &str = "image/btrfs/imagedb/content/sha256";
/// The tags, below the data root.
pub const REPOSITORIES: &str = "image/btrfs/repositories.json";

/// moby's chain ids of `diff_ids` (`sha256:<hex>` each), as `sha256:<hex>`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let h = Sha256::digest(format!("{prev} {d}").as_bytes());
                let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}")
            }
        };
        out.push(next);
    }
    out
}

/// Image id → tags, from `repositories.json` (absent: no tags).
fn tags(data_root: &Path) -> std::io::Result<BTreeMap<String, Vec<String>>> {
    let text = match std::fs::read(data_root.join(REPOSITORIES)) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let v: serde_json::Value = serde_json::from_slice(&text).map_err(std::io::Error::other)?;
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(repos) = v.get("Repositories").and_then(|r| r.as_object()) {
        for refs in repos.values().filter_map(|r| r.as_object()) {
            for (tag, id) in refs {
                if let Some(id) = id.as_str() {
                    out.entry(id.to_string()).or_default().push(tag.clone());
                }
            }
        }
    }
    Ok(out)
}

/// The images' configs: (id, diff ids). A config that does not parse is skipped, as moby
/// skips it.
fn image_configs(data_root: &Path) -> std::io::Result<Vec<(String, Vec<String>)>> {
    let dir = data_root.join(IMAGEDB_DIR);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(bytes) = std::fs::read(e.path()) else {
            continue;
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        let diff_ids = v
            .pointer("/rootfs/diff_ids")
            .and_then(|d| d.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        out.push((format!("sha256:{name}"), diff_ids));
    }
    out.sort();
    Ok(out)
}

/// A container's name and image from `containers/<id>/config.v2.json`.
pub(super) fn container_info(data_root: &Path, id: &str) -> (Option<String>, Option<String>) {
    let path = data_root.join("containers").join(id).join("config.v2.json");
    let Ok(bytes) = std::fs::read(path) else {
        return (None, None);
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return (None, None);
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    (
        s("Name").map(|n| n.trim_start_matches('/').to_string()),
        s("Image"),
    )
}

/// Reads the graph driver's layer store under `data_root`.
pub fn layer_map(data_root: &Path) -> std::io::Result<LayerMap> {
    let names = layout::subvolume_names(data_root)?.unwrap_or_default();
    let refs = layout::references(data_root)?;
    let report = layout::analyse(data_root)?;
    let subvolumes = data_root.join(layout::SUBVOLUMES_DIR);
    let mut layers: BTreeMap<String, Layer> = names
        .iter()
        .map(|n| {
            (
                n.clone(),
                Layer {
                    name: n.clone(),
                    path: subvolumes.join(n),
                    roles: Vec::new(),
                },
            )
        })
        .collect();
    // Chain id → subvolume name.
    let mut by_chain: BTreeMap<String, String> = BTreeMap::new();
    let mut containers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, who) in &refs.live {
        for r in who {
            match r {
                Reference::ImageLayer { chain_id } => {
                    by_chain.insert(chain_id.clone(), name.clone());
                }
                Reference::ContainerLayer { container } | Reference::InitLayer { container } => {
                    containers
                        .entry(container.clone())
                        .or_default()
                        .push(name.clone());
                }
                Reference::PendingRemoval { .. } => {}
            }
        }
    }
    let tags = tags(data_root)?;
    let mut images = Vec::new();
    let mut layer_images: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, diff_ids) in image_configs(data_root)? {
        let mut image = Image {
            tags: tags.get(&id).cloned().unwrap_or_default(),
            id,
            layers: Vec::new(),
            missing_layers: Vec::new(),
        };
        for chain in chain_ids(&diff_ids) {
            let hex = chain.strip_prefix("sha256:").unwrap_or(&chain);
            match by_chain.get(hex) {
                Some(name) if layers.contains_key(name) => {
                    image.layers.push(name.clone());
                    layer_images
                        .entry(name.clone())
                        .or_default()
                        .push(image.id.clone());
                }
                _ => image.missing_layers.push(chain.clone()),
            }
        }
        images.push(image);
    }
    for (hex, name) in &by_chain {
        if let Some(l) = layers.get_mut(name) {
            l.roles.push(Role::ImageLayer {
                chain_id: hex.clone(),
                images: layer_images.get(name).cloned().unwrap_or_default(),
            });
        }
    }
    for (name, who) in &refs.live {
        let Some(l) = layers.get_mut(name) else {
            continue;
        };
        for r in who {
            match r {
                Reference::ContainerLayer { container } => l.roles.push(Role::ContainerLayer {
                    container: container.clone(),
                }),
                Reference::InitLayer { container } => l.roles.push(Role::InitLayer {
                    container: container.clone(),
                }),
                _ => {}
            }
        }
    }
    for (list, role) in [
        (&report.orphans, Role::Orphan),
        (&report.pending_removal, Role::PendingRemoval),
        (&report.foreign, Role::Foreign),
    ] {
        for name in list {
            if let Some(l) = layers.get_mut(name) {
                l.roles.push(role.clone());
            }
        }
    }
    let containers = containers
        .into_iter()
        .map(|(id, mut layers)| {
            layers.sort();
            let (name, image) = container_info(data_root, &id);
            Container {
                id,
                name,
                image,
                layers,
            }
        })
        .collect();
    Ok(LayerMap {
        store: Store::Graphdriver,
        root: subvolumes,
        layers,
        images,
        containers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_moby() {
        let d = |n: u8| format!("sha256:{}", format!("{n:02x}").repeat(32));
        let chain = chain_ids(&[d(1), d(2)]);
        assert_eq!(chain[0], d(1), "the first chain id is the first diff id");
        let expected = Sha256::digest(format!("{} {}", d(1), d(2)).as_bytes());
        let hex: String = expected.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(chain[1], format!("sha256:{hex}"));
        assert!(chain_ids(&[]).is_empty());
    }
}
