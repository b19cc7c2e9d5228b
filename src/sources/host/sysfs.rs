//! `/sys/class/net/<iface>/…`: one value per file, any of which may be missing or fail to read
//! (`carrier`/`speed` give EINVAL on a down interface), so every field is best effort.

use std::path::Path;

use crate::model::MacAddr;

/// What sysfs says about one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkInfo {
    pub mac: Option<MacAddr>,
    pub operstate: Option<String>,
    pub ifindex: Option<u32>,
    /// Link speed in Mbit/s when the driver knows it.
    pub speed_mbps: Option<u64>,
    /// Lives under `devices/virtual/` (lo, bridges, veth, tun, ifb, …).
    pub is_virtual: bool,
}

pub fn read_link(sys_dir: &Path, iface: &str) -> LinkInfo {
    let dir = sys_dir.join("class/net").join(iface);
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let is_virtual = std::fs::read_link(&dir)
        .map(|target| target.to_string_lossy().contains("/virtual/"))
        .unwrap_or(false);
    LinkInfo {
        mac: read("address")
            .and_then(|m| m.parse::<MacAddr>().ok())
            .filter(MacAddr::is_meaningful),
        operstate: read("operstate"),
        ifindex: read("ifindex").and_then(|v| v.parse().ok()),
        // -1 = unknown; absurd values exist on some drivers, so anything above 1 Tbit/s is noise.
        speed_mbps: read("speed")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| *v > 0 && *v <= 1_000_000)
            .map(|v| v as u64),
        is_virtual,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn reads_what_is_there_and_tolerates_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let devices = root.path().join("devices");
        let eth0 = devices.join("pci0000:00/virtio2/net/eth0");
        let ifb0 = devices.join("virtual/net/ifb0");
        std::fs::create_dir_all(&eth0).unwrap();
        std::fs::create_dir_all(&ifb0).unwrap();
        std::fs::create_dir_all(root.path().join("class/net")).unwrap();
        symlink(&eth0, root.path().join("class/net/eth0")).unwrap();
        symlink(&ifb0, root.path().join("class/net/ifb0")).unwrap();
        std::fs::write(eth0.join("address"), "02:fc:00:00:00:01\n").unwrap();
        std::fs::write(eth0.join("operstate"), "up\n").unwrap();
        std::fs::write(eth0.join("ifindex"), "4\n").unwrap();
        std::fs::write(eth0.join("speed"), "-1\n").unwrap();
        std::fs::write(ifb0.join("address"), "00:00:00:00:00:00\n").unwrap();

        let info = read_link(root.path(), "eth0");
        assert_eq!(info.mac.unwrap().to_string(), "02:fc:00:00:00:01");
        assert_eq!(info.operstate.as_deref(), Some("up"));
        assert_eq!(info.ifindex, Some(4));
        assert_eq!(info.speed_mbps, None);
        assert!(!info.is_virtual);

        let info = read_link(root.path(), "ifb0");
        assert!(info.is_virtual);
        assert_eq!(info.mac, None, "all-zero MACs carry no identity");
        assert_eq!(read_link(root.path(), "nosuch0"), LinkInfo::default());
    }
}
