//! Known answers for the poll reply, and the fast path's agreement with the tree path.

use super::*;

/// A reply with every member the poll reads, a few it does not, and the router's quirks.
const REPLY: &str = "\u{feff}{ ,\n\"netdev\":{ \"INTERNET_rx\":\"0x1f\",\"INTERNET_tx\":\"0x2\",\"INTERNET_rx\":\"0x10000000a\",\"WIRED_rx\":\"0x5\",\"WIRED_tx\":\"0x6\"},\n\
\"cpu_usage\":{\"cpu1_total\":\"100\",\"cpu1_usage\":\"25\",\"cpu2_total\":\"100\",\"cpu2_usage\":5},\n\
\"memory_usage\":{\"mem_total\":\"1000\",\"mem_free\":\"600\",\"mem_used\":\"400\"},\n\
\"uptime\":\"Mon, 13 May 2024 09:44:45 +0800(64882 secs since boot)\",\n\
\"get_clientlist\":{\"AA:BB:CC:00:00:02\":{\"name\":\"b\",\"isOnline\":\"1\",\"isWL\":\"3\",\"rssi\":\"-40\"},\"maclist\":[\"AA:BB:CC:00:00:02\",\"AA:BB:CC:00:00:01\"],\"AA:BB:CC:00:00:01\":{\"nickName\":\"a\tb\",\"isOnline\":\"0\"},\"ClientAPILevel\":\"5\"},\n\
\"productid\":\"RT-AX88U\",\"firmver\":\"3.0.0.4\",\"buildno\":388,\"extendno\":\"24353-g1\",\"label_mac\":\"04:42:1A:10:20:30\",\n\
\"lan_hwaddr\":\"\",\"lan_ipaddr\":\"192.168.1.1\",\"rc_support\":\"mssid wifi6e dns_dpi\",\"bwdpi_db_enable\":\"1\",\n\
\"dns_dpi_trf_analysis\":\"0\",\"wan0_ipaddr\":,\"unknown_hook\":[[{\"x\":1}]], \"wan0_ipaddr\":\"203.0.113.7\", }\n";

fn tree(text: &str) -> Result<PollReply, HookParseError> {
    hookjson::parse_object(text).map(|map| PollReply::from_tree(&map))
}

#[test]
fn a_quirky_reply_reads_the_same_both_ways() {
    let fast = PollReply::parse(REPLY).unwrap();
    assert_eq!(fast, tree(REPLY).unwrap());
    assert!(fast.has_netdev && fast.has_clientlist);
    let netdev = fast.netdev.as_ref().unwrap();
    assert_eq!(
        netdev.internet,
        Some((0x1_0000_000a, 0x2)),
        "the last INTERNET_rx counts"
    );
    assert_eq!(fast.cpu, Some(CpuJiffies { total: 200, busy: 30 }));
    assert_eq!(fast.memory_percent, Some(40.0));
    assert_eq!(fast.uptime_s, Some(64882));
    assert_eq!(fast.router_clock_s, Some(1_715_564_685));
    assert_eq!(fast.wan_ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(fast.identity.model.as_deref(), Some("RT-AX88U"));
    assert_eq!(fast.identity.firmware.as_deref(), Some("3.0.0.4.388_24353-g1"));
    assert!(fast.identity.has_6ghz && fast.identity.dns_analyzer);
    assert_eq!(fast.identity.dns_traffic_analyzer, Some(false));
    let names: Vec<_> = fast.clients.iter().map(|c| c.name.as_deref()).collect();
    assert_eq!(names, [Some("a\tb"), Some("b")]);
}

#[test]
fn the_fast_path_keeps_every_member_it_reads() {
    // Each member alone, with a value that changes the reading: if the fast path dropped it,
    // the two readings would differ.
    // `(member, value, other members it needs to be read at all)`.
    let values = [
        ("netdev", "{\"INTERNET_rx\":\"0x1\",\"INTERNET_tx\":\"0x2\"}", ""),
        ("cpu_usage", "{\"cpu1_total\":\"9\",\"cpu1_usage\":\"1\"}", ""),
        ("memory_usage", "{\"mem_total\":\"10\",\"mem_used\":\"1\"}", ""),
        ("uptime", "\"Mon, 13 May 2024 09:44:45 +0800(5 secs since boot)\"", ""),
        ("productid", "\"X\"", ""),
        ("firmver", "\"3\"", ""),
        ("buildno", "\"4\"", "\"firmver\":\"3\","),
        ("extendno", "\"5\"", "\"firmver\":\"3\",\"buildno\":\"4\","),
        ("label_mac", "\"04:42:1A:10:20:30\"", ""),
        ("lan_hwaddr", "\"04:42:1A:10:20:31\"", ""),
        ("lan_ipaddr", "\"10.0.0.1\"", ""),
        ("rc_support", "\"wifi6e dns_dpi\"", ""),
        ("bwdpi_db_enable", "\"1\"", ""),
        ("dns_dpi_trf_analysis", "\"1\"", ""),
        ("wan0_ipaddr", "\"198.51.100.1\"", ""),
    ];
    assert_eq!(values.len(), SMALL_HOOKS.len());
    for (key, value, needs) in values {
        assert!(SMALL_HOOKS.contains(&key), "{key}");
        let without = PollReply::parse(&format!("{{{}}}", needs.trim_end_matches(','))).unwrap();
        let text = format!("{{{needs}\"{key}\":{value}}}");
        let fast = PollReply::parse(&text).unwrap();
        assert_eq!(fast, tree(&text).unwrap(), "{text}");
        assert_ne!(fast, without, "{key} changes the reading");
    }
}

#[test]
fn members_of_any_shape_read_the_same_both_ways() {
    for text in [
        "{}",
        "{\"get_clientlist\":null}",
        "{\"get_clientlist\":[1,2]}",
        "{\"get_clientlist\":{\"AA:BB:CC:00:00:01\":{}},\"get_clientlist\":\"gone\"}",
        "{\"netdev\":null,\"uptime\":12,\"productid\":false,\"wan0_ipaddr\":\"0.0.0.0\"}",
        "{\"netdev\":[\"INTERNET_rx\"],\"cpu_usage\":\"x\",\"memory_usage\":{\"mem_total\":0}}",
        "{\"buildno\":1.5e3,\"firmver\":-1,\"extendno\":18446744073709551615}",
    ] {
        let fast = PollReply::parse(text).unwrap();
        assert_eq!(fast, tree(text).unwrap(), "{text}");
    }
    let gone = PollReply::parse("{\"get_clientlist\":{\"AA:BB:CC:00:00:01\":{}},\"get_clientlist\":\"gone\"}");
    let gone = gone.unwrap();
    assert!(gone.has_clientlist && gone.clients.is_empty());
    let null_netdev = PollReply::parse("{\"netdev\":null}").unwrap();
    assert!(null_netdev.has_netdev && !null_netdev.has_clientlist && null_netdev.netdev.is_none());
}

#[test]
fn bad_replies_fail_with_the_tree_paths_message() {
    let deep = format!("{{\"x\":{}{}}}", "[".repeat(300), "]".repeat(300));
    let truncated = &REPLY[..REPLY.len() / 2];
    for text in [
        "",
        "<html>",
        "[1,2]",
        "\"s\"",
        "{\"a\":",
        "{\"a\":\"1\"",
        truncated,
        &deep,
        "{\"get_clientlist\":{\"AA:BB:CC:00:00:01\":{\"rssi\":1e999}}}",
        "{\"netdev\":{}} trailing",
    ] {
        let fast = PollReply::parse(text).unwrap_err();
        assert_eq!(Err(fast), tree(text), "{text:?}");
    }
    assert_eq!(
        PollReply::parse("[1,2]").unwrap_err().to_string(),
        "not a hook reply: expected an object, got an array"
    );
}
