//! The exposition-format reader on known answers, odd but valid lines, and broken input.

use super::scrape::{BOOT_TIME, RX, TX, byte_count, read};
use super::text::{LineError, parse_line};

/// An excerpt of a real node_exporter 1.5 reply (netdev, stat and time collectors).
const REAL: &str = r#"# HELP node_boot_time_seconds Node boot time, in unixtime.
# TYPE node_boot_time_seconds gauge
node_boot_time_seconds 1.796696814e+09
# HELP node_context_switches_total Total number of context switches.
# TYPE node_context_switches_total counter
node_context_switches_total 1.085984e+06
node_exporter_build_info{branch="debian/sid",goarch="amd64",goos="linux",goversion="go1.19.8",revision="1.5.0-1+b6",version="1.5.0"} 1
# HELP node_network_receive_bytes_total Network device statistic receive_bytes.
# TYPE node_network_receive_bytes_total counter
node_network_receive_bytes_total{device="eth0"} 3.99485594e+08
node_network_receive_bytes_total{device="ifb0"} 0
node_network_receive_packets_total{device="eth0"} 11344
# HELP node_network_transmit_bytes_total Network device statistic transmit_bytes.
# TYPE node_network_transmit_bytes_total counter
node_network_transmit_bytes_total{device="eth0"} 628669
node_network_transmit_bytes_total{device="ifb0"} 0
# HELP node_time_seconds System time in seconds since epoch (1970).
# TYPE node_time_seconds gauge
node_time_seconds 1.7967e+09
go_gc_duration_seconds{quantile="0.5"} 2.1e-05
promhttp_metric_handler_requests_total{code="200"} 3
"#;

#[test]
fn a_real_reply_reads_as_expected() {
    let s = read(REAL);
    assert_eq!(s.boot_time_s, Some(1_796_696_814.0));
    assert_eq!(s.time_s, Some(1_796_700_000.0));
    assert_eq!(s.bad_lines, 0);
    let names: Vec<&str> = s.interfaces.iter().map(|d| d.device.as_str()).collect();
    assert_eq!(names, ["eth0", "ifb0"]);
    let eth0 = &s.interfaces[0];
    assert_eq!(eth0.rx.and_then(byte_count), Some(399_485_594));
    assert_eq!(eth0.tx.and_then(byte_count), Some(628_669));
}

#[test]
fn lines_parse_to_their_parts() {
    let s = parse_line(r#"node_network_receive_bytes_total{device="eth0"} 12 1700000000000"#)
        .unwrap()
        .unwrap();
    assert_eq!(s.name, RX);
    assert_eq!(s.label("device"), Some("eth0"));
    assert_eq!(s.value, 12.0);
    // No labels, tabs, a trailing comma, blanks inside the braces, CRLF.
    let s = parse_line("node_boot_time_seconds\t42\r").unwrap().unwrap();
    assert_eq!((s.name.as_ref(), s.value), (BOOT_TIME, 42.0));
    let s = parse_line(r#"  x { a = "1" , b="2", } 3  "#).unwrap().unwrap();
    assert_eq!((s.label("a"), s.label("b"), s.value), (Some("1"), Some("2"), 3.0));
    let s = parse_line("empty{} 1").unwrap().unwrap();
    assert!(s.labels.is_empty());
    // Comments, HELP/TYPE and blank lines are no samples.
    for line in ["", "   ", "# HELP x y", "# TYPE x counter", "#anything"] {
        assert_eq!(parse_line(line), Ok(None), "{line:?}");
    }
}

#[test]
fn label_values_unescape() {
    let s = parse_line(r#"m{device="a\"b\\c\nd",other="x"} 1"#).unwrap().unwrap();
    assert_eq!(s.label("device"), Some("a\"b\\c\nd"));
    assert_eq!(s.label("other"), Some("x"));
    // A closing brace or comma inside a value is part of the value.
    let s = parse_line(r#"m{device="a},b=\"c\"",x="y"} 2"#).unwrap().unwrap();
    assert_eq!(s.label("device"), Some(r#"a},b="c""#));
    // Unknown escapes are kept as written; UTF-8 passes through.
    let s = parse_line(r#"m{device="w\lan","é"="ü"} 3"#).unwrap().unwrap();
    assert_eq!(s.label("device"), Some(r"w\lan"));
    assert_eq!(s.label("é"), Some("ü"));
}

#[test]
fn quoted_metric_names_inside_the_braces() {
    let s = parse_line(r#"{"node_network_transmit_bytes_total", device="eth1"} 7"#)
        .unwrap()
        .unwrap();
    assert_eq!((s.name.as_ref(), s.label("device"), s.value), (TX, Some("eth1"), 7.0));
    let scrape = read("{\"node_network_receive_bytes_total\",device=\"eth1\"} 5\n");
    assert_eq!(scrape.interfaces[0].rx, Some(5.0));
}

#[test]
fn special_values() {
    let v = |text: &str| parse_line(&format!("m {text}")).map(|s| s.unwrap().value);
    assert!(v("NaN").unwrap().is_nan());
    assert_eq!(v("+Inf"), Ok(f64::INFINITY));
    assert_eq!(v("-Inf"), Ok(f64::NEG_INFINITY));
    assert_eq!(v("1.5e+09"), Ok(1.5e9));
    assert_eq!(v("-0"), Ok(0.0));
    for bad in ["inf", "nan", "infinity", "0x10", "1_000", "12abc", "--1"] {
        assert_eq!(v(bad), Err(LineError::BadValue), "{bad}");
    }
    // As counters, only finite whole numbers ≥ 0 that fit u64 count.
    for (value, want) in [
        (f64::NAN, None),
        (f64::INFINITY, None),
        (f64::NEG_INFINITY, None),
        (-1.0, None),
        (1.8446744073709552e19, None),
        (0.0, Some(0)),
        (12.9, Some(12)),
        (9_007_199_254_740_992.0, Some(9_007_199_254_740_992)),
    ] {
        assert_eq!(byte_count(value), want, "{value}");
    }
}

#[test]
fn malformed_lines_are_errors() {
    for (line, want) in [
        (r#"m{device="eth0" 1"#, LineError::BadLabel),
        (r#"m{device="eth0"#, LineError::UnterminatedLabels),
        (r#"m{device="eth0\"#, LineError::UnterminatedLabels),
        (r#"m{device=eth0} 1"#, LineError::BadLabel),
        (r#"m{=\"x\"} 1"#, LineError::BadLabel),
        (r#"m{"a","b"} 1"#, LineError::BadLabel),
        ("m", LineError::NoValue),
        ("m{}", LineError::NoValue),
        ("m{}1", LineError::BadValue),
        ("m 1 2 3", LineError::Trailing),
        ("m 1 12.5", LineError::Trailing),
        ("9m 1", LineError::NoName),
        ("{} 1", LineError::NoName),
        ("-m 1", LineError::NoName),
    ] {
        assert_eq!(parse_line(line), Err(want), "{line:?}");
    }
}

#[test]
fn a_reply_with_broken_and_missing_parts_keeps_what_is_good() {
    let text = "node_network_receive_bytes_total{device=\"eth0\"} 10\n\
                node_network_receive_bytes_total{device=\"eth1\" 99\n\
                node_network_transmit_bytes_total{device=\"eth0\"} NaN\n\
                node_network_receive_bytes_total{device=\"eth0\"} 999\n\
                node_network_receive_bytes_total{nodevice=\"x\"} 5\n\
                garbage that is not ours\n";
    let s = read(text);
    assert_eq!(s.bad_lines, 1);
    assert_eq!(s.first_bad, Some((2, LineError::BadLabel)));
    assert_eq!(s.interfaces.len(), 1);
    // The first sample of a repeated series counts; NaN stays NaN for the source to refuse.
    assert_eq!(s.interfaces[0].rx, Some(10.0));
    assert!(s.interfaces[0].tx.is_some_and(f64::is_nan));
    assert_eq!((s.boot_time_s, s.time_s), (None, None));
    // Nothing of ours at all.
    assert_eq!(read("# nothing\nfoo 1\n").interfaces.len(), 0);
    assert_eq!(read("").bad_lines, 0);
    // Binary noise is not a panic.
    let noise: String = (0..5000u32).filter_map(|i| char::from_u32((i * 7919) % 0x2FFF)).collect();
    let _ = read(&noise);
    let _ = read(&format!("node_{noise}"));
}

#[test]
fn huge_input_stays_linear_and_bounded() {
    // 200,000 distinct interfaces (a reply of about 10 MB): each read once, in order.
    let mut text = String::new();
    for i in 0..200_000 {
        text.push_str(&format!("{RX}{{device=\"d{i}\"}} {i}\n{TX}{{device=\"d{i}\"}} 1\n"));
    }
    let s = read(&text);
    assert_eq!(s.interfaces.len(), 200_000);
    assert_eq!(s.interfaces[199_999].rx, Some(199_999.0));
    // One line of 4 MB: a label value that long is read, a line that never closes is refused.
    let long = "x".repeat(4 << 20);
    let line = format!("m{{device=\"{long}\"}} 1");
    let s = parse_line(&line).unwrap().unwrap();
    assert_eq!(s.label("device").map(str::len), Some(4 << 20));
    assert_eq!(
        parse_line(&format!("m{{device=\"{long}")),
        Err(LineError::UnterminatedLabels)
    );
}
