//! Fixed-width fields at byte offsets: the one decoder of bytes from the disk and the kernel.
//!
//! One rule for reads: a field that does not lie wholly inside the buffer is a [`ShortRead`]
//! the caller sees and handles, never a silent 0 and never a panic. Tree items, tree blocks and
//! superblocks are read with these, whether the kernel returned them or an image holds them.
//!
//! Writes go into buffers this crate sized itself (every encoder's size is checked at compile
//! time), so a write past the end is a bug in this crate, not bad input: it panics.
//!
//! On-disk structures are little-endian; the headers the kernel writes into ioctl buffers
//! (`btrfs_ioctl_search_header`) are in host order, read with the `ne_*` functions. Fields are
//! copied out of the bytes, never borrowed as structs, so alignment never matters.

/// A field that lies (partly) past the end of the bytes it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{width}-byte field at offset {offset} lies past the end of {len} bytes")]
pub struct ShortRead {
    /// Offset of the field.
    pub offset: usize,
    /// Its width in bytes.
    pub width: usize,
    /// Bytes there were.
    pub len: usize,
}

/// The `width` bytes at `off`.
pub(crate) fn bytes_at(b: &[u8], off: usize, width: usize) -> Result<&[u8], ShortRead> {
    off.checked_add(width)
        .and_then(|end| b.get(off..end))
        .ok_or(ShortRead {
            offset: off,
            width,
            len: b.len(),
        })
}

/// The `N` bytes at `off`, copied.
pub(crate) fn array_at<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], ShortRead> {
    let bytes = bytes_at(b, off, N)?;
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

/// The byte at `off`.
pub(crate) fn u8_at(b: &[u8], off: usize) -> Result<u8, ShortRead> {
    array_at::<1>(b, off).map(|[v]| v)
}

/// The little-endian `u16` at `off`.
pub(crate) fn u16_at(b: &[u8], off: usize) -> Result<u16, ShortRead> {
    array_at(b, off).map(u16::from_le_bytes)
}

/// The little-endian `u32` at `off`.
pub(crate) fn u32_at(b: &[u8], off: usize) -> Result<u32, ShortRead> {
    array_at(b, off).map(u32::from_le_bytes)
}

/// The little-endian `u64` at `off`.
pub(crate) fn u64_at(b: &[u8], off: usize) -> Result<u64, ShortRead> {
    array_at(b, off).map(u64::from_le_bytes)
}

/// The 16-byte UUID at `off`.
pub(crate) fn uuid_at(b: &[u8], off: usize) -> Result<uuid::Uuid, ShortRead> {
    array_at(b, off).map(uuid::Uuid::from_bytes)
}

/// The host-order `u32` at `off` (ioctl headers).
pub(crate) fn ne_u32_at(b: &[u8], off: usize) -> Result<u32, ShortRead> {
    array_at(b, off).map(u32::from_ne_bytes)
}

/// The host-order `u64` at `off` (ioctl headers).
pub(crate) fn ne_u64_at(b: &[u8], off: usize) -> Result<u64, ShortRead> {
    array_at(b, off).map(u64::from_ne_bytes)
}

/// Writes `v` at `off`.
pub(crate) fn put_u8(buf: &mut [u8], off: usize, v: u8) {
    buf[off] = v;
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    put_bytes(buf, off, &v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    put_bytes(buf, off, &v.to_le_bytes());
}

/// Writes `v` little-endian at `off`.
pub(crate) fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    put_bytes(buf, off, &v.to_le_bytes());
}

/// Copies `bytes` to `off`.
pub(crate) fn put_bytes(buf: &mut [u8], off: usize, bytes: &[u8]) {
    buf[off..off + bytes.len()].copy_from_slice(bytes);
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
        assert_eq!(u64_at(&b, 1), Ok(0x0102_0304_0506_0708));
        put_u32(&mut b, 10, 0xAABB_CCDD);
        assert_eq!(u32_at(&b, 10), Ok(0xAABB_CCDD));
        put_u16(&mut b, 14, 0x1234);
        assert_eq!(u16_at(&b, 14), Ok(0x1234));
        assert_eq!(u8_at(&b, 14), Ok(0x34));
        assert_eq!(
            ne_u32_at(&b, 10),
            Ok(u32::from_ne_bytes(b[10..14].try_into().unwrap()))
        );
    }

    #[test]
    fn short_reads_are_errors_not_zeros() {
        let b = [0xffu8; 10];
        let short = ShortRead {
            offset: 4,
            width: 8,
            len: 10,
        };
        assert_eq!(u64_at(&b, 4), Err(short));
        assert_eq!(ne_u64_at(&b, 4), Err(short));
        assert_eq!(u16_at(&b, 8), Ok(0xffff));
        assert!(u16_at(&b, 9).is_err());
        assert!(u8_at(&b, 10).is_err());
        assert!(uuid_at(&b, 0).is_err());
        // An offset near usize::MAX must not wrap around to the start.
        assert!(u64_at(&b, usize::MAX - 2).is_err());
        assert_eq!(bytes_at(&b, 10, 0), Ok(&[][..]));
        assert_eq!(
            short.to_string(),
            "8-byte field at offset 4 lies past the end of 10 bytes"
        );
    }
}
