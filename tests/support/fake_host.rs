//! A fake `/proc` + `/sys` tree for the host source: the test controls counters, boot id and
//! interface identities, so reboots and re-created interfaces can be staged.

use std::path::{Path, PathBuf};

pub struct FakeHost {
    pub proc_dir: PathBuf,
    pub sys_dir: PathBuf,
}

impl FakeHost {
    pub fn new(parent: &Path) -> Self {
        let proc_dir = parent.join("proc");
        let sys_dir = parent.join("sys");
        std::fs::create_dir_all(proc_dir.join("net")).unwrap();
        std::fs::create_dir_all(proc_dir.join("sys/kernel/random")).unwrap();
        std::fs::create_dir_all(sys_dir.join("class/net")).unwrap();
        std::fs::write(proc_dir.join("sys/kernel/hostname"), "titan\n").unwrap();
        std::fs::write(proc_dir.join("sys/kernel/osrelease"), "6.1.0-test\n").unwrap();
        let host = Self { proc_dir, sys_dir };
        host.set_boot_id("11111111-1111-1111-1111-111111111111");
        host
    }

    pub fn set_boot_id(&self, id: &str) {
        std::fs::write(self.proc_dir.join("sys/kernel/random/boot_id"), format!("{id}\n")).unwrap();
    }

    /// A physical interface (`devices/pci…`) or a virtual one (`devices/virtual/net/…`).
    pub fn add_interface(&self, name: &str, mac: &str, ifindex: u32, is_virtual: bool) {
        let target = if is_virtual {
            self.sys_dir.join(format!("devices/virtual/net/{name}"))
        } else {
            self.sys_dir.join(format!("devices/pci0000:00/net/{name}"))
        };
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("address"), format!("{mac}\n")).unwrap();
        std::fs::write(target.join("operstate"), "up\n").unwrap();
        std::fs::write(target.join("ifindex"), format!("{ifindex}\n")).unwrap();
        let link = self.sys_dir.join("class/net").join(name);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, link).unwrap();
    }

    /// The link speed the driver reports (`/sys/class/net/<name>/speed`, Mbit/s).
    pub fn set_speed(&self, name: &str, mbps: u32) {
        let link = self.sys_dir.join("class/net").join(name);
        std::fs::write(link.join("speed"), format!("{mbps}\n")).unwrap();
    }

    pub fn set_ifindex(&self, name: &str, ifindex: u32) {
        let link = self.sys_dir.join("class/net").join(name);
        std::fs::write(link.join("ifindex"), format!("{ifindex}\n")).unwrap();
    }

    /// Writes /proc/net/dev with these (name, rx bytes, tx bytes), atomically.
    pub fn set_counters(&self, rows: &[(&str, u64, u64)]) {
        let mut text = String::from(
            "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n",
        );
        for (name, rx, tx) in rows {
            text.push_str(&format!("{name:>6}: {rx:>7} 1 0 0 0 0 0 0 {tx:>8} 1 0 0 0 0 0 0\n"));
        }
        let tmp = self.proc_dir.join("net/dev.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, self.proc_dir.join("net/dev")).unwrap();
    }

    /// Config lines for `[host]` pointing at this tree.
    pub fn config(&self, interval: &str) -> String {
        format!(
            "[host]\ninterval = \"{interval}\"\nproc_dir = \"{}\"\nsys_dir = \"{}\"\n",
            self.proc_dir.display(),
            self.sys_dir.display()
        )
    }
}
