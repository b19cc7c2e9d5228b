//! A vnstat-like server for the demo: interface totals that grow with the traffic the caller
//! feeds in, "saved" the way vnstatd saves (every `save_every` of the server's clock), and
//! published as vnstat 2.10's `vnstat --json f 1` document (shared/protocols/vnstat.md) in a
//! file. The bridge reads it with `cat FILE`, a command like any other: nothing between the
//! document and the real vnstat source is emulated away.

use std::io::Write;
use std::path::{Path, PathBuf};

/// One interface of an emulated server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub rx: u64,
    pub tx: u64,
}

/// An emulated server running vnstatd.
#[derive(Debug, Clone)]
pub struct VnstatServer {
    path: PathBuf,
    /// When the database was created (Unix seconds).
    created: i64,
    save_every_s: i64,
    last_save: Option<i64>,
    pub interfaces: Vec<Interface>,
}

impl VnstatServer {
    /// A server whose database lives at `path` (the JSON vnstat would print), created at
    /// `created`, saving every `save_every_s` seconds (vnstatd's SaveInterval, default 5 min).
    pub fn new(path: &Path, created: i64, save_every_s: i64, interfaces: Vec<Interface>) -> Self {
        Self {
            path: path.to_path_buf(),
            created,
            save_every_s: save_every_s.max(1),
            last_save: None,
            interfaces,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes carried by interface `name` since the last call (unknown names are ignored).
    pub fn add(&mut self, name: &str, rx: u64, tx: u64) {
        if let Some(iface) = self.interfaces.iter_mut().find(|i| i.name == name) {
            iface.rx = iface.rx.saturating_add(rx);
            iface.tx = iface.tx.saturating_add(tx);
        }
    }

    /// Saves when a save is due at `now_s` (server clock), as vnstatd does: the document only
    /// changes on saves. Returns whether it saved.
    pub fn tick(&mut self, now_s: i64) -> std::io::Result<bool> {
        if self.last_save.is_some_and(|last| now_s - last < self.save_every_s) {
            return Ok(false);
        }
        self.save(now_s)?;
        Ok(true)
    }

    /// Writes the document now, atomically (a reader never sees half of it).
    pub fn save(&mut self, now_s: i64) -> std::io::Result<()> {
        let text = json(&self.interfaces, now_s, self.created);
        let tmp = self.path.with_extension("tmp");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        drop(file);
        std::fs::rename(&tmp, &self.path)?;
        self.last_save = Some(now_s);
        Ok(())
    }
}

/// vnstat 2.10's JSON for `--json f 1` (key order and shapes as in fixtures/vnstat).
pub fn json(interfaces: &[Interface], updated: i64, created: i64) -> String {
    let (cy, cm, cd) = civil(created);
    let (uy, um, ud) = civil(updated);
    let (uh, umin) = (updated.rem_euclid(86_400) / 3600, updated.rem_euclid(3600) / 60);
    let list: Vec<String> = interfaces
        .iter()
        .map(|i| {
            format!(
                r#"{{"name":"{}","alias":"","created":{{"date":{{"year":{cy},"month":{cm},"day":{cd}}},"timestamp":{created}}},"updated":{{"date":{{"year":{uy},"month":{um},"day":{ud}}},"time":{{"hour":{uh},"minute":{umin}}},"timestamp":{updated}}},"traffic":{{"total":{{"rx":{},"tx":{}}},"fiveminute":[]}}}}"#,
                i.name, i.rx, i.tx
            )
        })
        .collect();
    format!(
        r#"{{"vnstatversion":"2.10","jsonversion":"2","interfaces":[{}]}}"#,
        list.join(",")
    ) + "\n"
}

fn civil(ts: i64) -> (i64, u32, u32) {
    crate::calendar::civil_from_days(ts.div_euclid(86_400))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::vnstat::parse;

    #[test]
    fn saves_only_on_the_save_interval_and_the_bridge_parser_reads_it() {
        let dir = std::env::temp_dir().join(format!("b2m-vnstat-emu-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("titan.json");
        let iface = |rx, tx| Interface {
            name: "eno1".into(),
            rx,
            tx,
        };
        let mut server = VnstatServer::new(&path, 1_700_000_000, 60, vec![iface(1000, 10)]);
        assert!(server.tick(1_764_000_000).unwrap());
        server.add("eno1", 500, 5);
        server.add("nope", 1, 1);
        assert!(!server.tick(1_764_000_059).unwrap(), "no save before the interval");
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = parse(&text).unwrap();
        assert_eq!((doc.interfaces[0].rx, doc.interfaces[0].tx), (1000, 10));
        assert!(server.tick(1_764_000_060).unwrap());
        let doc = parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!((doc.interfaces[0].rx, doc.interfaces[0].tx), (1500, 15));
        assert_eq!(doc.interfaces[0].updated_ms, 1_764_000_060_000);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
