//! The lvmdbusd backend (in progress).
