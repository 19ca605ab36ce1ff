//! A private lvmdbusd: its own dbus-daemon on a socket in a temporary directory, and an
//! `LVM_SYSTEM_DIR` whose lvm.conf has a `global_filter` admitting only the given devices.
//!
//! The bus applies the policy lvm2-dbusd installs for the system bus
//! (`com.redhat.lvmdbus1.conf`: only root may call the daemon), so callers meet what they
//! would meet on the system bus.

use super::first_existing;
use lvm_kit::{Confinement, DbusBackend};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use testkit::harness::{ctx, Failed};

/// A running private dbus-daemon plus lvmdbusd; both are killed on Drop.
pub struct PrivateLvmDbusd {
    bus: Child,
    daemon: Child,
    address: String,
    dir: tempfile::TempDir,
}

impl PrivateLvmDbusd {
    /// Starts both daemons and waits (with a deadline) until lvmdbusd answers.
    pub fn start(devices: &[PathBuf]) -> Result<Self, Failed> {
        let dir = ctx("tempdir", tempfile::tempdir())?;
        let socket = dir.path().join("bus");
        let bus_conf = dir.path().join("bus.conf");
        let policy = first_existing(&[
            "/usr/share/dbus-1/system.d/com.redhat.lvmdbus1.conf",
            "/etc/dbus-1/system.d/com.redhat.lvmdbus1.conf",
        ]);
        if !std::path::Path::new(policy).exists() {
            return Err(format!(
                "{policy} is missing: install lvm2-dbusd (it ships lvmdbusd's bus policy)"
            )
            .into());
        }
        // Any user may connect and send (as on the system bus); the included policy then keeps
        // lvmdbusd's name and methods to root.
        ctx(
            "write bus.conf",
            std::fs::write(
                &bus_conf,
                format!(
                    r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>session</type><listen>unix:path={}</listen>
<policy context="default"><allow user="*"/><allow send_destination="*" eavesdrop="true"/><allow eavesdrop="true"/><allow own="*"/></policy>
<include>{policy}</include>
</busconfig>"#,
                    socket.display()
                ),
            ),
        )?;
        let dbus_daemon = first_existing(&["/usr/bin/dbus-daemon", "/bin/dbus-daemon"]);
        let mut bus = ctx(
            "start dbus-daemon (install the dbus package)",
            Command::new(dbus_daemon)
                .arg(format!("--config-file={}", bus_conf.display()))
                .args(["--nofork", "--print-address=1"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(ctx(
                    "bus log",
                    std::fs::File::create(dir.path().join("dbus-daemon.log")),
                )?)
                .spawn(),
        )?;
        // dbus-daemon prints its address once it listens: that is the readiness signal.
        let mut address = String::new();
        let stdout = bus.stdout.take().ok_or("dbus-daemon stdout")?;
        ctx(
            "read bus address",
            BufReader::new(stdout).read_line(&mut address),
        )?;
        let address = address.trim().to_owned();
        if address.is_empty() {
            let _ = bus.kill();
            let _ = bus.wait();
            return Err("dbus-daemon exited without printing its address".into());
        }

        let etc = dir.path().join("etc");
        ctx("mkdir etc", std::fs::create_dir(&etc))?;
        let confinement = ctx("confine", Confinement::new(devices.iter().cloned()))?;
        let activation = if lvm_kit::device_mapper_loaded() {
            ""
        } else {
            "global { activation = 0 }\n"
        };
        ctx(
            "write lvm.conf",
            std::fs::write(
                etc.join("lvm.conf"),
                format!(
                    "devices {{ global_filter = {} obtain_device_list_from_udev = 0 }}\n\
                     activation {{ udev_sync = 0 udev_rules = 0 monitoring = 0 }}\n\
                     backup {{ backup = 0 archive = 0 }}\n{activation}",
                    confinement.global_filter()
                ),
            ),
        )?;
        let log = ctx(
            "log file",
            std::fs::File::create(dir.path().join("lvmdbusd.log")),
        )?;
        let log2 = ctx("log file", log.try_clone())?;
        let lvmdbusd = first_existing(&["/usr/sbin/lvmdbusd", "/sbin/lvmdbusd"]);
        let daemon = Command::new(lvmdbusd)
            .env("LVMDBUSD_USE_SESSION", "1")
            .env("LVM_DBUSD_USE_SESSION", "1")
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("LVM_SYSTEM_DIR", &etc)
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn();
        let daemon = match daemon {
            Ok(d) => d,
            Err(e) => {
                let _ = bus.kill();
                let _ = bus.wait();
                return Err(format!("start {lvmdbusd} (install lvm2-dbusd): {e}").into());
            }
        };
        let mut me = PrivateLvmDbusd {
            bus,
            daemon,
            address,
            dir,
        };
        me.wait_ready()?;
        Ok(me)
    }

    fn wait_ready(&mut self) -> Result<(), Failed> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.daemon.try_wait() {
                return Err(format!("lvmdbusd exited ({status}): {}", self.log()).into());
            }
            let probe =
                DbusBackend::at_address_with_timeout(&self.address, Duration::from_secs(10));
            match probe.and_then(|b| b.refresh()) {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("lvmdbusd not ready after 60 s: {last}; log: {}", self.log()).into())
    }

    /// A backend connected to this daemon.
    pub fn backend(&self) -> Result<DbusBackend, Failed> {
        ctx("connect", DbusBackend::at_address(&self.address))
    }

    /// Lets every user reach the bus socket (the tempdir is root's, mode 0700), as every user
    /// reaches the system bus; what they may call is then the bus policy's decision.
    pub fn admit_other_users(&self) -> Result<(), Failed> {
        use std::os::unix::fs::PermissionsExt;
        let open = |path: &std::path::Path, mode| {
            ctx(
                "chmod",
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)),
            )
        };
        open(self.dir.path(), 0o755)?;
        open(&self.dir.path().join("bus"), 0o777)
    }

    /// The private bus address.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("lvmdbusd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateLvmDbusd {
    fn drop(&mut self) {
        for child in [&mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
