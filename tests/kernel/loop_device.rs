//! The testkit's own loop-device layer on the real kernel: a free device from
//! `/dev/loop-control`, attached with autoclear to our sparse file, detached on drop.

use crate::root_test;
use crate::util::{check, MIB};
use libtest_mimic::{Failed, Trial};
use testkit::fixture::SparseFile;
use testkit::loopdev::LoopDevice;

pub fn trials() -> Vec<Trial> {
    vec![
        root_test(
            "loop_device::attach_autoclear_detach",
            attach_autoclear_detach,
        ),
        root_test(
            "loop_device::two_devices_never_share",
            two_devices_never_share,
        ),
    ]
}

fn attach_autoclear_detach() -> Result<(), Failed> {
    let image = SparseFile::new(64 * MIB)?;
    let device = LoopDevice::attach(image.path())?;
    let backing = device.backing_file()?;
    check(
        backing == image.path(),
        format!(
            "kernel says {} is backed by {}",
            device.path().display(),
            backing.display()
        ),
    )?;
    check(device.autoclear()?, "autoclear is not set")?;
    let size = std::fs::read_to_string(format!("/sys/block/loop{}/size", device.number()))?;
    check(
        size.trim() == (64 * MIB / 512).to_string(),
        format!(
            "device size {} sectors, expected {}",
            size.trim(),
            64 * MIB / 512
        ),
    )?;
    let sys = format!("/sys/block/loop{}/loop/backing_file", device.number());
    drop(device);
    check(
        !std::path::Path::new(&sys).exists(),
        format!("{sys} still exists after drop: the device was not detached"),
    )
}

fn two_devices_never_share() -> Result<(), Failed> {
    let images = [SparseFile::new(8 * MIB)?, SparseFile::new(8 * MIB)?];
    let threads: Vec<_> = images
        .iter()
        .map(|i| i.path().to_path_buf())
        .map(|p| std::thread::spawn(move || LoopDevice::attach(&p)))
        .collect();
    let devices: Vec<LoopDevice> = threads
        .into_iter()
        .map(|t| t.join().expect("attach thread panicked"))
        .collect::<Result<_, _>>()?;
    check(
        devices[0].number() != devices[1].number(),
        format!("both attaches got loop{}", devices[0].number()),
    )?;
    for (device, image) in devices.iter().zip(&images) {
        check(
            device.backing_file()? == image.path(),
            format!(
                "{} is not backed by {}",
                device.path().display(),
                image.path().display()
            ),
        )?;
    }
    Ok(())
}
