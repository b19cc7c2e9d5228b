//! How a byte count or a rate reads in Home Assistant (issue 16 §4).
//!
//! HA 2026.11's MQTT sensor has no `suggested_unit_of_measurement` (the key is dropped without a
//! warning), so the unit a card shows is the discovery's `unit_of_measurement`. Raw `B` and
//! `bit/s` read as `1524000666395 B`; a user who switches such a sensor to GiB by hand gets nine
//! decimals (HA adds the conversion's digits to the display precision). So the discovery says
//! MiB, GiB or Mbit/s, its `value_template` divides the exact integer of the state JSON (which
//! `mosquitto_sub` users and scripts keep: bytes and bit/s, never rounded), and
//! `suggested_display_precision` fits the magnitudes each figure has:
//!
//! | figure | router, server, Deco unit | client (phone, TV, plug, PC) |
//! |---|---|---|
//! | total since first seen, this month, last month, plan remaining | GiB, 2 decimals | GiB, 2 decimals |
//! | today, yesterday | GiB, 2 decimals | MiB, 1 decimal |
//! | rate | Mbit/s, 1 decimal | Mbit/s, 2 decimals |
//!
//! A server's TiB total reads `1,419.36 GiB`, a phone's `0.35 GiB`; a server's month `312.50 GiB`,
//! a phone's `2.41 GiB`; a phone's day `5.8 MiB` (a day in GiB would read `0.00` for it), a
//! server's `48.12 GiB`; a WAN link `212.4 Mbit/s`, an idle phone `0.02 Mbit/s`. The units are
//! fixed per entity (a unit that followed the value would split HA's history graphs at every
//! change). Users can still pick another unit of the same class in HA; HA converts.
//!
//! Upgrading from `B`/`bit/s`: the entity keeps its id and history; HA's recorder keeps the
//! long-term statistics in the unit they were compiled in (`B`, `bit/s`) and converts the new
//! states into it (same device class, `sensor/recorder.py` `_normalize_states`), so sums and
//! means go on without a reset; graphs show the new unit. That holds only if HA never shows the
//! old value in the new unit: the outbox sends the new configs while the bridge is still
//! `offline`, then states, then `online` (outbox.rs `Priority`). Checked in a real HA 2026.11
//! over a restart from the previous version: the 5-minute statistics' sum went on exactly.

use crate::model::DeviceKind;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const MBIT: u64 = 1_000_000;

/// What a figure counts, for its unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span {
    /// Since the bridge first saw the device, this month, or a plan's remainder.
    Long,
    /// Since local midnight.
    Today,
    /// Bit/s right now.
    Rate,
}

impl Span {
    /// From a state key: `rx_today`, `rx_bps`, `rx_bytes`, `rx_month`, …; yesterday reads
    /// like today.
    pub fn of_key(key: &str) -> Self {
        if key.ends_with("_bps") {
            Self::Rate
        } else if key.ends_with("_today") || key.ends_with("_yesterday") {
            Self::Today
        } else {
            Self::Long
        }
    }
}

/// The unit HA shows, what the state's integer is divided by to get it, and the decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Display {
    pub unit: &'static str,
    pub divisor: u64,
    pub precision: u8,
}

/// The table above.
pub fn display(span: Span, kind: DeviceKind) -> Display {
    let client = kind == DeviceKind::Client;
    match (span, client) {
        (Span::Today, true) => Display {
            unit: "MiB",
            divisor: MIB,
            precision: 1,
        },
        (Span::Long | Span::Today, _) => Display {
            unit: "GiB",
            divisor: GIB,
            precision: 2,
        },
        (Span::Rate, true) => Display {
            unit: "Mbit/s",
            divisor: MBIT,
            precision: 2,
        },
        (Span::Rate, false) => Display {
            unit: "Mbit/s",
            divisor: MBIT,
            precision: 1,
        },
    }
}

/// A value template that divides the number at `path` (a Jinja expression on `value_json`),
/// and renders `None` (HA: unknown) when it is `null` or `guard` (a Jinja condition that must
/// hold before `path` can be read) does not hold: no template error in HA's log.
pub fn template(path: &str, divisor: u64, guard: Option<&str>) -> String {
    let condition = match guard {
        Some(g) => format!("{g} and {path} is number"),
        None => format!("{path} is number"),
    };
    format!("{{{{ {path} / {divisor} if {condition} else none }}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_follow_the_span_and_the_kind_of_device() {
        assert_eq!(Span::of_key("rx_bytes"), Span::Long);
        assert_eq!(Span::of_key("eth0_tx_bytes"), Span::Long);
        assert_eq!(Span::of_key("tx_month"), Span::Long);
        assert_eq!(Span::of_key("rx_today"), Span::Today);
        assert_eq!(Span::of_key("mesh_rx_bps"), Span::Rate);
        assert_eq!(display(Span::Today, DeviceKind::Client).unit, "MiB");
        assert_eq!(display(Span::Today, DeviceKind::Server).unit, "GiB");
        assert_eq!(display(Span::Long, DeviceKind::Client).divisor, 1 << 30);
        assert_eq!(display(Span::Rate, DeviceKind::Router).precision, 1);
        assert_eq!(display(Span::Rate, DeviceKind::Client).precision, 2);
    }

    #[test]
    fn templates_divide_and_say_none_for_a_missing_number() {
        assert_eq!(
            template("value_json.rx_bps", 1_000_000, None),
            "{{ value_json.rx_bps / 1000000 if value_json.rx_bps is number else none }}"
        );
        assert_eq!(
            template(
                "value_json.views['mesh'].rx_bytes",
                1 << 30,
                Some("'mesh' in value_json.views")
            ),
            "{{ value_json.views['mesh'].rx_bytes / 1073741824 if 'mesh' in value_json.views and value_json.views['mesh'].rx_bytes is number else none }}"
        );
    }
}
