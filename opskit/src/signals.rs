//! SIGINT and SIGTERM, counted on a thread of their own.
//!
//! Each delivered signal makes signal-hook's handler write one byte into a socket pair
//! (`signal_hook::low_level::pipe`); a thread per signal reads the bytes, so every delivery is
//! counted, also two sent back to back (the iterator API would merge those into one), and a
//! program's main thread can wait for the next one with a timeout.
//! Two signals of the same kind sent before the kernel delivers the first are merged by the
//! kernel itself (standard signals do not queue): nothing in a process can count those apart.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Which signal arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C on a terminal.
    Interrupt,
    /// SIGTERM: `kill`, or systemd stopping a service.
    Terminate,
}

impl Signal {
    /// The conventional name, e.g. `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }
}

#[derive(Default)]
struct State {
    received: Vec<Signal>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn record(&self, signal: Signal) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .received
            .push(signal);
        self.changed.notify_all();
    }
}

/// SIGINT and SIGTERM, no longer fatal, counted on their own threads. Cheap to clone; there is
/// one per process ([`Interrupts::install`] returns the same one each time).
#[derive(Clone)]
pub struct Interrupts {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Interrupts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interrupts")
            .field("received", &self.count())
            .finish()
    }
}

static INSTALLED: OnceLock<Interrupts> = OnceLock::new();

impl Interrupts {
    /// From now on SIGINT and SIGTERM no longer end the process: they are counted, and the
    /// program decides. Idempotent.
    pub fn install() -> std::io::Result<Interrupts> {
        if let Some(existing) = INSTALLED.get() {
            return Ok(existing.clone());
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        for (number, signal) in [
            (signal_hook::consts::SIGINT, Signal::Interrupt),
            (signal_hook::consts::SIGTERM, Signal::Terminate),
        ] {
            let (mut reader, writer) = UnixStream::pair()?;
            signal_hook::low_level::pipe::register(number, writer)?;
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name(format!("signal-{}", signal.name()))
                .spawn(move || {
                    let mut buf = [0u8; 64];
                    loop {
                        match reader.read(&mut buf) {
                            Ok(0) => return,
                            Ok(n) => (0..n).for_each(|_| shared.record(signal)),
                            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                            Err(_) => return,
                        }
                    }
                })?;
        }
        let interrupts = Interrupts { shared };
        Ok(INSTALLED.get_or_init(|| interrupts).clone())
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many signals have arrived so far.
    pub fn count(&self) -> usize {
        self.state().received.len()
    }

    /// The n-th signal (1-based), if it has arrived.
    pub fn nth(&self, n: usize) -> Option<Signal> {
        n.checked_sub(1)
            .and_then(|i| self.state().received.get(i).copied())
    }

    /// Blocks until more than `seen` signals have arrived or `timeout` has passed
    /// (`Duration::MAX`: no timeout); returns the count then.
    pub fn wait_beyond(&self, seen: usize, timeout: Duration) -> usize {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.state();
        while state.received.len() <= seen {
            state = match deadline {
                None => self
                    .shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.shared
                        .changed
                        .wait_timeout(state, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
        state.received.len()
    }

    /// A flag that turns true at the first signal (set by a thread of its own), for loops
    /// that stop at their next clean point.
    pub fn first_signal_flag(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(self.count() > 0));
        let (me, set) = (self.clone(), std::sync::Arc::clone(&flag));
        std::thread::spawn(move || {
            me.wait_beyond(0, Duration::MAX);
            set.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        flag
    }
}
