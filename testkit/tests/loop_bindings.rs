//! The committed `linux/loop.h` bindings equal the C header, as compiled by the system `cc`:
//! every request number and flag, and the size and field offsets of the two structs we pass.

use btrfs_lvm_testkit::loopdev::sys;
use std::mem::{offset_of, size_of};
use std::process::Command;

#[test]
fn loop_bindings_match_the_c_header() {
    let ours: Vec<(&str, u64)> = vec![
        ("LOOP_SET_FD", sys::LOOP_SET_FD.into()),
        ("LOOP_CLR_FD", sys::LOOP_CLR_FD.into()),
        ("LOOP_SET_STATUS64", sys::LOOP_SET_STATUS64.into()),
        ("LOOP_GET_STATUS64", sys::LOOP_GET_STATUS64.into()),
        ("LOOP_CONFIGURE", sys::LOOP_CONFIGURE.into()),
        ("LOOP_CTL_GET_FREE", sys::LOOP_CTL_GET_FREE.into()),
        ("LO_FLAGS_AUTOCLEAR", sys::LO_FLAGS_AUTOCLEAR.into()),
        ("LO_FLAGS_READ_ONLY", sys::LO_FLAGS_READ_ONLY.into()),
        ("LO_NAME_SIZE", sys::LO_NAME_SIZE.into()),
        (
            "sizeof(struct loop_info64)",
            size_of::<sys::loop_info64>() as u64,
        ),
        (
            "sizeof(struct loop_config)",
            size_of::<sys::loop_config>() as u64,
        ),
        (
            "offsetof(struct loop_info64, lo_flags)",
            offset_of!(sys::loop_info64, lo_flags) as u64,
        ),
        (
            "offsetof(struct loop_info64, lo_file_name)",
            offset_of!(sys::loop_info64, lo_file_name) as u64,
        ),
        (
            "offsetof(struct loop_config, fd)",
            offset_of!(sys::loop_config, fd) as u64,
        ),
        (
            "offsetof(struct loop_config, block_size)",
            offset_of!(sys::loop_config, block_size) as u64,
        ),
        (
            "offsetof(struct loop_config, info)",
            offset_of!(sys::loop_config, info) as u64,
        ),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include <linux/loop.h>\nint main(void) {\n",
    );
    for (expr, _) in &ours {
        c.push_str(&format!("  printf(\"%lu\\n\", (unsigned long)({expr}));\n"));
    }
    c.push_str("  return 0;\n}\n");
    let src = dir.path().join("loop.c");
    let exe = dir.path().join("loop");
    std::fs::write(&src, c).unwrap();
    let status = Command::new("cc")
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .status()
        .expect("run cc");
    assert!(status.success(), "cc failed to compile {}", src.display());
    let out = Command::new(&exe).output().expect("run the C program");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let theirs: Vec<u64> = text.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(theirs.len(), ours.len());
    for ((expr, ours), theirs) in ours.iter().zip(&theirs) {
        assert_eq!(
            ours, theirs,
            "{expr}: C header says {theirs}, the bindings say {ours}"
        );
    }
}
