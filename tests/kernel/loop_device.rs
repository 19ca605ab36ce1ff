//! The testkit's own loop-device layer on the real kernel: a free device from
//! `/dev/loop-control`, attached with autoclear to our sparse file, detached on drop.

use crate::data::MIB;
use testkit::ensure;
use testkit::fixture::SparseFile;
use testkit::harness::Failed;
use testkit::loopdev::LoopDevice;

testkit::register!(root: attach_autoclear_detach);
fn attach_autoclear_detach() -> Result<(), Failed> {
    let image = SparseFile::new(64 * MIB)?;
    let device = LoopDevice::attach(image.path())?;
    let backing = device.backing_file()?;
    ensure!(
        backing == image.path(),
        "kernel says {} is backed by {}",
        device.path().display(),
        backing.display(),
    );
    ensure!(device.autoclear()?, "autoclear is not set");
    let size = std::fs::read_to_string(format!("/sys/block/loop{}/size", device.number()))?;
    ensure!(
        size.trim() == (64 * MIB / 512).to_string(),
        "device size {} sectors, expected {}",
        size.trim(),
        64 * MIB / 512,
    );
    let sys = format!("/sys/block/loop{}/loop/backing_file", device.number());
    drop(device);
    ensure!(
        !std::path::Path::new(&sys).exists(),
        "{sys} still exists after drop: the device was not detached",
    );
    Ok(())
}

testkit::register!(root: two_devices_never_share);
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
    ensure!(
        devices[0].number() != devices[1].number(),
        "both attaches got loop{}",
        devices[0].number(),
    );
    for (device, image) in devices.iter().zip(&images) {
        ensure!(
            device.backing_file()? == image.path(),
            "{} is not backed by {}",
            device.path().display(),
            image.path().display(),
        );
    }
    Ok(())
}
