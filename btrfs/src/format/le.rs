//! Little-endian field access at fixed byte offsets.
//!
//! On-disk structures are encoded by writing each field at its offset, never by casting memory,
//! so no `unsafe` is needed and alignment never matters. Out-of-range offsets are bugs in the
//! caller and panic; readers of untrusted data check lengths before calling these.

/// Writes `v` at `off`.
pub(crate) fn put_u8(buf: &mut [u8], off: usize, v: u8) {
    buf[off] = v;
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    buf[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Copies `bytes` to `off`.
pub(crate) fn put_bytes(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
}

/// Reads the byte at `off`.
pub(crate) fn get_u8(buf: &[u8], off: usize) -> u8 {
    buf[off]
}

/// Reads a little-endian `u16` at `off`.
pub(crate) fn get_u16(buf: &[u8], off: usize) -> u16 {
    u16::from_le_bytes(buf[off..off + 2].try_into().expect("2 bytes"))
}

/// Reads a little-endian `u32` at `off`.
pub(crate) fn get_u32(buf: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(buf[off..off + 4].try_into().expect("4 bytes"))
}

/// Reads a little-endian `u64` at `off`.
pub(crate) fn get_u64(buf: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(buf[off..off + 8].try_into().expect("8 bytes"))
}

/// Reads a 16-byte UUID at `off`.
pub(crate) fn get_uuid(buf: &[u8], off: usize) -> uuid::Uuid {
    uuid::Uuid::from_bytes(buf[off..off + 16].try_into().expect("16 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_little_endian() {
        let mut b = [0u8; 16];
        put_u64(&mut b, 1, 0x0102_0304_0506_0708);
        assert_eq!(b[1], 0x08);
        assert_eq!(b[8], 0x01);
        assert_eq!(get_u64(&b, 1), 0x0102_0304_0506_0708);
        put_u32(&mut b, 10, 0xAABB_CCDD);
        assert_eq!(get_u32(&b, 10), 0xAABB_CCDD);
        put_u16(&mut b, 14, 0x1234);
        assert_eq!(get_u16(&b, 14), 0x1234);
        assert_eq!(get_u8(&b, 14), 0x34);
    }
}
