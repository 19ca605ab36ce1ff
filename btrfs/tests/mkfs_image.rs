//! The native formatter, without a kernel: images built in memory or in regular files, read
//! back with the crate's own parser and self-checked. Needs no root and no btrfs-progs.

use btrfs_kit::format::consts::{
    compat_ro, incompat, super_mirror_offset, SUPER_OFFSET, SUPER_SIZE,
};
use btrfs_kit::format::Superblock;
use btrfs_kit::mkfs::verify::{self_check, SelfCheckError};
use btrfs_kit::mkfs::{build_image, minimum_size, mkfs, Features, MetadataProfile, MkfsOptions};
use btrfs_kit::{ChecksumType, ErrorKind};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Cursor;
use uuid::Uuid;

const MIB: u64 = 1 << 20;

/// The image of `opts` at `size` bytes, in memory (the zeroed vector is allocated lazily).
fn image(opts: &MkfsOptions, size: u64) -> Cursor<Vec<u8>> {
    let (built, _, _) = build_image(opts, size).expect("build");
    let mut dev = vec![0u8; size as usize];
    for w in &built.writes {
        dev[w.offset as usize..w.offset as usize + w.bytes.len()].copy_from_slice(&w.bytes);
    }
    Cursor::new(dev)
}

fn opts(
    metadata: MetadataProfile,
    checksum: ChecksumType,
    nodesize: u32,
    features: Features,
) -> MkfsOptions {
    let mut o = MkfsOptions::default();
    o.metadata = metadata;
    o.checksum = checksum;
    o.nodesize = nodesize;
    o.features = features;
    o
}

fn all_features() -> Vec<Features> {
    (0..16u8)
        .map(|m| Features {
            no_holes: m & 1 != 0,
            free_space_tree: m & 2 != 0,
            skinny_metadata: m & 4 != 0,
            extref: m & 8 != 0,
        })
        .collect()
}

/// Tree blocks and chunks never cover a superblock copy (the 64 MiB one, for these sizes).
fn assert_clear_of_superblock_copies(o: &MkfsOptions, size: u64) {
    let (built, _, layout) = build_image(o, size).unwrap();
    let copies: Vec<u64> = (0..3).map(super_mirror_offset).collect();
    for w in &built.writes {
        let end = w.offset + w.bytes.len() as u64;
        let is_super = copies.contains(&w.offset) && w.bytes.len() == SUPER_SIZE;
        assert!(
            is_super
                || copies
                    .iter()
                    .all(|&c| end <= c || w.offset >= c + SUPER_SIZE as u64)
        );
    }
    for c in layout.chunks() {
        for &s in &c.stripes {
            assert!(
                copies
                    .iter()
                    .all(|&m| s + c.length <= m || s >= m + SUPER_SIZE as u64),
                "{c:?}"
            );
        }
    }
}

#[test]
fn every_profile_checksum_nodesize_and_feature_set_self_checks() {
    let mut n = 0;
    for metadata in [MetadataProfile::Dup, MetadataProfile::Single] {
        for checksum in ChecksumType::ALL {
            for nodesize in [4096, 8192, 16384, 32768, 65536] {
                for features in all_features() {
                    let o = opts(metadata, checksum, nodesize, features);
                    assert_clear_of_superblock_copies(&o, 256 * MIB);
                    let report =
                        self_check(image(&o, 256 * MIB)).unwrap_or_else(|e| panic!("{o:?}: {e}"));
                    let trees = 8 + features.free_space_tree as usize;
                    assert_eq!(report.tree_blocks, trees, "{o:?}");
                    assert_eq!(report.bytes_used, trees as u64 * nodesize as u64);
                    assert_eq!(report.chunks, 3);
                    n += 1;
                }
            }
        }
    }
    assert_eq!(n, 2 * 4 * 5 * 16);
}

#[test]
fn superblock_reflects_the_options() {
    let mut o = opts(
        MetadataProfile::Single,
        ChecksumType::Blake2b,
        8192,
        Features::default(),
    );
    o.label = "docker-data".into();
    o.features.extref = false;
    let mut dev = image(&o, 300 * MIB);
    let sb = Superblock::decode(&dev.get_mut()[SUPER_OFFSET as usize..][..SUPER_SIZE]).unwrap();
    assert_eq!(sb.label, "docker-data");
    assert_eq!(
        (sb.nodesize, sb.sectorsize, sb.csum_type),
        (8192, 4096, ChecksumType::Blake2b)
    );
    assert_eq!(sb.incompat_flags & incompat::EXTENDED_IREF, 0);
    assert_ne!(sb.incompat_flags & incompat::SKINNY_METADATA, 0);
    assert_eq!(
        sb.compat_ro_flags,
        compat_ro::FREE_SPACE_TREE | compat_ro::FREE_SPACE_TREE_VALID
    );
    assert_eq!(sb.total_bytes, 300 * MIB);
    // The copy at 64 MiB carries its own offset and a valid checksum.
    let m1 = super_mirror_offset(1) as usize;
    let copy = Superblock::decode(&dev.get_mut()[m1..m1 + SUPER_SIZE]).unwrap();
    assert_eq!(copy.bytenr, m1 as u64);
    assert_eq!(
        Superblock {
            bytenr: sb.bytenr,
            ..copy
        },
        sb
    );
}

#[test]
fn self_check_catches_wrong_accounting() {
    let o = MkfsOptions::default();
    for (what, tamper) in [
        (
            "bytes_used",
            (|sb: &mut Superblock| sb.bytes_used += 4096) as fn(&mut Superblock),
        ),
        ("device bytes_used", |sb: &mut Superblock| {
            sb.dev_item.bytes_used -= MIB
        }),
    ] {
        let mut dev = image(&o, 256 * MIB);
        let at = SUPER_OFFSET as usize;
        let mut sb = Superblock::decode(&dev.get_mut()[at..at + SUPER_SIZE]).unwrap();
        tamper(&mut sb);
        dev.get_mut()[at..at + SUPER_SIZE].copy_from_slice(&sb.to_bytes());
        match self_check(dev) {
            Err(SelfCheckError::Violations(v)) => {
                assert!(v.iter().any(|m| m.contains(what)), "{what}: {v:?}")
            }
            other => panic!("{what}: tampered image passed or failed oddly: {other:?}"),
        }
    }
    // A flipped byte inside a tree block is a checksum error.
    let mut dev = image(&o, 256 * MIB);
    let (built, _, _) = build_image(&o, 256 * MIB).unwrap();
    let block = built
        .writes
        .iter()
        .find(|w| w.offset != SUPER_OFFSET)
        .unwrap()
        .offset as usize;
    dev.get_mut()[block + 200] ^= 0xff;
    assert!(matches!(self_check(dev), Err(SelfCheckError::Image(_))));
}

/// SHA-256 over every write (offset, length, bytes) of the golden image.
fn golden_hash(o: &MkfsOptions, size: u64) -> String {
    let (built, _, _) = build_image(o, size).unwrap();
    let mut h = Sha256::new();
    for w in &built.writes {
        h.update(w.offset.to_le_bytes());
        h.update((w.bytes.len() as u64).to_le_bytes());
        h.update(&w.bytes);
    }
    format!("{:x}", h.finalize())
}

/// Pins the exact bytes of a reproducible image, so unintended format changes show up.
///
/// To update after an intended change: run this test, review the new image, then paste the hash
/// the failure prints. To review: `cargo run --example mkfs -- --size 536870912 -L golden
/// --fsid 01234567-89ab-4def-8123-456789abcdef --device-uuid fedcba98-7654-4321-8fed-cba987654321
/// --time 1700000000 /tmp/golden.img`, then `btrfs check --readonly` (both modes) and
/// `btrfs inspect-internal dump-tree` on it.
#[test]
fn golden_image_is_stable() {
    let mut o = MkfsOptions::default();
    o.fsid = Some(Uuid::from_u128(0x0123_4567_89ab_4def_8123_4567_89ab_cdef));
    o.device_uuid = Some(Uuid::from_u128(0xfedc_ba98_7654_4321_8fed_cba9_8765_4321));
    o.time = Some(1_700_000_000);
    o.label = "golden".into();
    let hash = golden_hash(&o, 512 * MIB);
    assert_eq!(
        hash, "67930f1c2ba6a842244c4d014a20d9a3f26a902b05d61e9700896651717e0796",
        "the image bytes changed; see this test's doc comment"
    );
    // The same options give the same bytes twice; a different time gives different bytes.
    assert_eq!(golden_hash(&o, 512 * MIB), hash);
    o.time = Some(1_700_000_001);
    assert_ne!(golden_hash(&o, 512 * MIB), hash);
}

#[test]
fn rejects_too_small_sizes_clearly() {
    for dup in [true, false] {
        let mut o = MkfsOptions::default();
        o.metadata = if dup {
            MetadataProfile::Dup
        } else {
            MetadataProfile::Single
        };
        let min = minimum_size(&o);
        assert!(build_image(&o, min).is_ok());
        match build_image(&o, min - 4096) {
            Err(e) if matches!(e.kind(), ErrorKind::TooSmall { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&min.to_string()) && msg.contains("too small"),
                    "{msg}"
                );
            }
            other => panic!("expected TooSmall, got {other:?}"),
        }
    }
}

struct TempImage(std::path::PathBuf);

impl TempImage {
    fn new(name: &str) -> Self {
        let p =
            std::env::temp_dir().join(format!("btrfs-kit-mkfs-{}-{name}.img", std::process::id()));
        let _ = std::fs::remove_file(&p);
        TempImage(p)
    }
}

impl Drop for TempImage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn formats_a_file_refuses_signatures_and_wipes_old_copies() {
    let img = TempImage::new("file");
    let mut o = MkfsOptions::default();
    o.size = Some(300 * MIB);
    let made = mkfs(&img.0, &o).unwrap();
    assert_eq!(std::fs::metadata(&img.0).unwrap().len(), 300 * MIB);
    let report = self_check(std::fs::File::open(&img.0).unwrap()).unwrap();
    assert_eq!(report.chunks, 3);
    let sb = {
        let b = std::fs::read(&img.0).unwrap();
        Superblock::decode(&b[SUPER_OFFSET as usize..][..SUPER_SIZE]).unwrap()
    };
    assert_eq!(sb.fsid, made.fsid);

    // Now it holds btrfs: refused without force.
    match mkfs(&img.0, &o).map_err(btrfs_kit::Error::into_kind) {
        Err(ErrorKind::ExistingFilesystem { found, .. }) => assert_eq!(found, "btrfs"),
        other => panic!("expected ExistingFilesystem, got {other:?}"),
    }
    // With force, a smaller filesystem over it: the old copy at 64 MiB must be gone.
    o.force = true;
    o.size = Some(40 * MIB);
    mkfs(&img.0, &o).unwrap();
    let b = std::fs::read(&img.0).unwrap();
    let m1 = super_mirror_offset(1) as usize;
    assert!(
        !Superblock::has_magic(&b[m1..m1 + SUPER_SIZE]),
        "stale superblock copy at 64 MiB"
    );
    self_check(Cursor::new(b)).unwrap();

    // An ext4 signature is refused too, with a message naming it.
    let ext = TempImage::new("ext4");
    let mut bytes = vec![0u8; 64 * MIB as usize];
    bytes[0x438] = 0x53;
    bytes[0x439] = 0xEF;
    std::fs::write(&ext.0, &bytes).unwrap();
    let err = mkfs(&ext.0, &MkfsOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("ext2/ext3/ext4") && err.to_string().contains("force"),
        "{err}"
    );
    // Too small a file: a clear error, and the file is left alone.
    let mut o = MkfsOptions::default();
    o.force = true;
    o.size = Some(16 * MIB);
    let err = mkfs(&ext.0, &o).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::TooSmall { .. }), "{err}");
    assert_eq!(std::fs::read(&ext.0).unwrap()[0x438], 0x53);
}

fn any_options() -> impl Strategy<Value = (MkfsOptions, u64)> {
    (
        prop::bool::ANY,
        prop::sample::select(ChecksumType::ALL.to_vec()),
        prop::sample::select(vec![4096u32, 8192, 16384, 32768, 65536]),
        prop::array::uniform4(prop::bool::ANY),
        "[a-zA-Z0-9 _.-]{0,255}",
        prop::option::of(any::<u128>()),
        0u64..(3 << 30),
    )
        .prop_map(|(dup, checksum, nodesize, f, label, fsid, extra)| {
            let mut o = MkfsOptions::default();
            o.metadata = if dup {
                MetadataProfile::Dup
            } else {
                MetadataProfile::Single
            };
            o.checksum = checksum;
            o.nodesize = nodesize;
            o.features = Features {
                no_holes: f[0],
                free_space_tree: f[1],
                skinny_metadata: f[2],
                extref: f[3],
            };
            o.label = label;
            o.fsid = fsid.map(|u| Uuid::from_u128(u | 1));
            let size = minimum_size(&o) + extra;
            (o, size)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random valid options and sizes always give an image that passes the self-check.
    #[test]
    fn random_valid_options_self_check((o, size) in any_options()) {
        let report = self_check(image(&o, size)).map_err(|e| TestCaseError::fail(format!("{o:?} {size}: {e}")))?;
        prop_assert_eq!(report.chunks, 3);
        let mut dev = image(&o, size);
        let sb = Superblock::decode(&dev.get_mut()[SUPER_OFFSET as usize..][..SUPER_SIZE]).unwrap();
        prop_assert_eq!(sb.label, o.label.clone());
        prop_assert_eq!(sb.total_bytes, size - size % 4096);
        if let Some(fsid) = o.fsid {
            prop_assert_eq!(sb.fsid, fsid);
        }
    }
}
