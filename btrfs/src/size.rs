//! A typed byte count: the workspace's one byte-size type, from the support crate opskit
//! (lvm-kit's `Bytes` is the same type).

pub use opskit::{ByteSize, InvalidSize};
