//! `provision`: the LV, its btrfs, the mount and Docker's storage driver, in one idempotent
//! command ([`crate::provision`] does the work).

use super::{EXIT_CODES, EXIT_FAILED, EXIT_REFUSED, EXIT_USAGE};
use crate::config::{Config, Size};
use crate::provision::{self, ProvisionError, Request};
use crate::{errln, outln};
use std::path::PathBuf;

/// `provision`.
#[derive(clap::Args, Debug)]
#[command(after_help = EXIT_CODES)]
pub struct ProvisionArgs {
    /// The volume group [config: provision.vg].
    #[arg(long)]
    pub vg: Option<String>,
    /// The LV's size with an lvm2 unit, e.g. 10g [config: provision.size].
    #[arg(long)]
    pub size: Option<Size>,
    /// The LV's name [config: provision.lv; default docker].
    #[arg(long)]
    pub lv: Option<String>,
    /// Where to mount it [config: docker.data_root; default /var/lib/docker].
    #[arg(long = "mount", value_name = "PATH")]
    pub mount_point: Option<PathBuf>,
    /// The filesystem label [config: provision.label; default docker].
    #[arg(long)]
    pub label: Option<String>,
    /// Mount options [config: provision.mount_options; default noatime].
    #[arg(long)]
    pub mount_options: Option<String>,
    /// Make the mount permanent with an fstab line instead of a systemd mount unit.
    #[arg(long)]
    pub fstab: bool,
    /// Where images and containers live [config: provision.image_store; default: what the
    /// installed dockerd picks on a fresh data root (Docker 29+: containerd, older:
    /// graphdriver), said in the plan]. With containerd and a system containerd, its root
    /// becomes a subvolume of the same filesystem, mounted by a unit keyed by the UUID.
    #[arg(long, value_enum)]
    pub image_store: Option<crate::docker::ImageStore>,
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the plan and the outcome as one JSON document.
    #[arg(long)]
    pub json: bool,
}

/// What the command line and the configuration leave out of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No volume group.
    #[error("give the volume group: --vg VG (or provision.vg in the configuration)")]
    NoVg,
    /// No size.
    #[error("give the size: --size 10g (or provision.size in the configuration)")]
    NoSize,
}

fn provision_request(config: &Config, args: &ProvisionArgs) -> Result<Request, RequestError> {
    let p = &config.provision;
    let vg = args
        .vg
        .clone()
        .or_else(|| p.vg.clone())
        .ok_or(RequestError::NoVg)?;
    let size = args.size.or(p.size).ok_or(RequestError::NoSize)?;
    Ok(Request {
        vg,
        size: size.0,
        lv: args.lv.clone().unwrap_or_else(|| p.lv.clone()),
        label: args.label.clone().unwrap_or_else(|| p.label.clone()),
        mount_point: args
            .mount_point
            .clone()
            .unwrap_or_else(|| config.docker.data_root.clone()),
        mount_options: args
            .mount_options
            .clone()
            .unwrap_or_else(|| p.mount_options.clone()),
        fstab: args.fstab || p.fstab,
        image_store: args.image_store.or(p.image_store),
        containerd_config: config.containerd.config.clone(),
        docker: config.docker.clone(),
        paths: config.paths.clone(),
        lvm_devices: config.lvm.devices.clone(),
    })
}

/// Runs `provision`; returns the exit code.
pub fn run(config: &Config, args: &ProvisionArgs) -> u8 {
    let request = match provision_request(config, args) {
        Ok(r) => r,
        Err(e) => {
            errln!("dockroot provision: {e}");
            return EXIT_USAGE;
        }
    };
    let plan = match provision::plan(&request) {
        Ok(plan) => plan,
        Err(e) => {
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&e).expect("serialises"));
            }
            errln!("dockroot provision: {e}");
            return EXIT_REFUSED;
        }
    };
    let total = plan.steps.len();
    if !args.json {
        outln!(
            "plan for {} on {}/{} ({} step(s), {} to do):",
            request.mount_point.display(),
            request.vg,
            request.lv,
            total,
            plan.steps.iter().filter(|s| !s.done).count()
        );
        for (i, s) in plan.steps.iter().enumerate() {
            let mark = if s.done { "done " } else { "to do" };
            outln!("  {}/{total} [{mark}] {}", i + 1, s.description);
        }
    }
    let json = |result: &str, error: Option<&ProvisionError>| {
        let mut doc = serde_json::json!({ "plan": plan, "result": result });
        if let Some(e) = error {
            doc["error"] = serde_json::to_value(e).expect("serialises");
            doc["message"] = e.to_string().into();
        }
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    };
    if plan.nothing_to_do() {
        if args.json {
            json("nothing to do", None);
        } else {
            outln!(
                "nothing to do: {} is provisioned",
                request.mount_point.display()
            );
        }
        return 0;
    }
    if args.dry_run {
        if args.json {
            json("dry run", None);
        } else {
            outln!("dry run: nothing changed");
        }
        return 0;
    }
    // From here: no stop half-way on a closed stdout, and a signal stops between steps.
    let _keep_going = opskit::keep_going();
    let interrupts = opskit::Interrupts::install().ok();
    let stop = || interrupts.as_ref().is_some_and(|i| i.count() > 0);
    let quiet = args.json;
    let result = provision::apply(&request, &plan, &stop, &mut |i, step| {
        if !quiet {
            outln!("  {}/{total} done: {}", i + 1, step.description);
        }
    });
    match result {
        Ok(()) => {
            if args.json {
                json("done", None);
            } else {
                let containerd = plan
                    .steps
                    .iter()
                    .any(|s| matches!(s.action, provision::Action::CreateSubvolume { .. }));
                outln!(
                    "provisioned {}: restart {} to use it (`systemctl restart {}`){}",
                    request.mount_point.display(),
                    if containerd {
                        "containerd and Docker"
                    } else {
                        "Docker"
                    },
                    if containerd {
                        "containerd docker"
                    } else {
                        "docker"
                    },
                    if request.fstab {
                        ""
                    } else {
                        "; run `systemctl daemon-reload` so systemd knows the new units"
                    }
                );
            }
            0
        }
        Err(e) => {
            if args.json {
                json("failed", Some(&e));
            }
            errln!("dockroot provision: {e}");
            EXIT_FAILED
        }
    }
}
