//! A stand-in for `vnstat --json`: a tiny script that prints whatever the test put in its
//! directory and exits with the code the test chose. The bridge runs it like any command.

use std::path::{Path, PathBuf};

const SCRIPT: &str = r#"#!/bin/sh
# Test double for vnstat: prints $1/out, exits with $1/code, optionally sleeps $1/delay first.
dir="$1"
echo x >> "$dir/calls"
if [ -f "$dir/delay" ]; then sleep "$(cat "$dir/delay")"; fi
if [ -f "$dir/out" ]; then cat "$dir/out"; fi
if [ -f "$dir/code" ]; then exit "$(cat "$dir/code")"; fi
exit 0
"#;

pub struct FakeVnstat {
    pub dir: PathBuf,
}

/// One interface in a generated vnstat 2.10 document.
pub struct Iface<'a> {
    pub name: &'a str,
    pub rx: u64,
    pub tx: u64,
}

impl FakeVnstat {
    pub fn new(parent: &Path, name: &str) -> Self {
        let dir = parent.join(format!("vnstat-{name}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("fake-vnstat"), SCRIPT).expect("script");
        Self { dir }
    }

    /// The `command` for the bridge config, as a TOML array.
    pub fn command_toml(&self) -> String {
        format!(
            "[\"sh\", \"{}\", \"{}\"]",
            self.dir.join("fake-vnstat").display(),
            self.dir.display()
        )
    }

    pub fn calls(&self) -> usize {
        std::fs::read_to_string(self.dir.join("calls"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    /// What the next run prints and its exit code (written atomically so a run never sees half).
    pub fn set_output(&self, text: &str, code: i32) {
        let tmp = self.dir.join("out.tmp");
        std::fs::write(&tmp, text).expect("out");
        std::fs::rename(&tmp, self.dir.join("out")).expect("rename");
        std::fs::write(self.dir.join("code"), code.to_string()).expect("code");
    }

    pub fn set_delay(&self, secs: Option<u32>) {
        match secs {
            Some(s) => std::fs::write(self.dir.join("delay"), s.to_string()).expect("delay"),
            None => {
                let _ = std::fs::remove_file(self.dir.join("delay"));
            }
        }
    }

    /// A vnstat 2.10 `--json f 1` document with the given totals.
    pub fn set_json(&self, ifaces: &[Iface], updated: i64, created: i64) {
        self.set_output(&json(ifaces, updated, created), 0);
    }
}

/// Renders vnstat 2.10's JSON (same key order and shapes as the captures in fixtures/vnstat).
pub fn json(ifaces: &[Iface], updated: i64, created: i64) -> String {
    let (cy, cm, cd) = civil(created);
    let (uy, um, ud) = civil(updated);
    let (uh, umin) = ((updated % 86400) / 3600, (updated % 3600) / 60);
    let list: Vec<String> = ifaces
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

/// (year, month, day) of a Unix time, UTC.
fn civil(ts: i64) -> (i64, u32, u32) {
    bandwidth2mqtt::calendar::civil_from_days(ts.div_euclid(86_400))
}
