//! The errno behind an error, for the `errno` field of the JSON reports: found by walking the
//! error's source chain to the first `std::io::Error`, `nix` errno or `btrfs_kit::Error` that
//! carries one.

use std::error::Error;

/// The errno behind `error` or one of its sources, where there is one.
pub fn of(error: &(dyn Error + 'static)) -> Option<i32> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(n) = io.raw_os_error() {
                return Some(n);
            }
        } else if let Some(n) = e.downcast_ref::<nix::errno::Errno>() {
            return Some(*n as i32);
        } else if let Some(b) = e.downcast_ref::<btrfs_kit::Error>() {
            if let Some(n) = b.errno() {
                return Some(n.raw_os_error());
            }
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn finds_the_errno_of_a_source() {
        let e = Outer(std::io::Error::from_raw_os_error(nix::libc::ENOSPC));
        assert_eq!(of(&e), Some(nix::libc::ENOSPC));
        assert_eq!(of(&nix::errno::Errno::EROFS), Some(nix::libc::EROFS));
        let none = Outer(std::io::Error::other("no errno"));
        assert_eq!(of(&none), None);
    }
}
