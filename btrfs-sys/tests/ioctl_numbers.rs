//! Every request number in `btrfs_sys::ioctl` equals the C header's, as compiled by the system `cc`.

use std::process::Command;

#[test]
// `Request` is `c_ulong`, u64 here but u32 on 32-bit targets: the cast is needed there.
#[allow(clippy::unnecessary_cast)]
fn request_numbers_match_the_c_header() {
    let dir = std::env::temp_dir().join(format!("btrfs-sys-ioctl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut c = String::from(
        "#include <stdio.h>\n#include <linux/fs.h>\n#include <linux/fiemap.h>\n#include <linux/btrfs.h>\nint main(void) {\n",
    );
    for (name, _) in btrfs_sys::ioctl::ALL {
        c.push_str(&format!(
            "  printf(\"{name} %lu\\n\", (unsigned long){name});\n"
        ));
    }
    c.push_str("  return 0;\n}\n");
    let src = dir.join("ioctls.c");
    let exe = dir.join("ioctls");
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
    let mut checked = 0;
    for (line, (name, ours)) in text.lines().zip(btrfs_sys::ioctl::ALL) {
        let (c_name, c_value) = line.split_once(' ').unwrap();
        assert_eq!(c_name, *name);
        let c_value: u64 = c_value.parse().unwrap();
        assert_eq!(
            c_value, *ours as u64,
            "{name}: C header says {c_value:#x}, we say {ours:#x}"
        );
        checked += 1;
    }
    assert_eq!(checked, btrfs_sys::ioctl::ALL.len());
    std::fs::remove_dir_all(&dir).ok();
}
