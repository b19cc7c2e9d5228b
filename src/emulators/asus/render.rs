//! Page and hook bodies in the router's own formats (shared/protocols/asus.md §4, fixtures in
//! shared/fixtures/asus).

use serde_json::{Value, json};

use super::state::{EmuClient, RouterState};

/// An `appGet.cgi` reply for the calls in `hook`, in order, joined like httpd does.
pub fn app_get(state: &mut RouterState, hook: &str) -> String {
    let mut members: Vec<String> = Vec::new();
    for call in hook.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let (name, arg) = match call.split_once('(') {
            Some((n, rest)) => (n.trim(), rest.trim_end_matches(')').trim()),
            None => (call, ""),
        };
        let member = match name {
            "netdev" => Some(netdev(state)),
            "cpu_usage" => Some(cpu_usage(state)),
            "memory_usage" => Some(memory_usage(state)),
            "uptime" => Some(format!("\"uptime\":\"{}\"", uptime_text(state))),
            "get_clientlist" => Some(format!("\"get_clientlist\":{}", client_list(state))),
            "get_wan_unit" => Some("\"get_wan_unit\":0".to_owned()),
            "nvram_get" => Some(format!("\"{arg}\":{}", json!(nvram(state, arg)))),
            _ => None,
        };
        match member {
            Some(m) => members.push(m),
            // Unknown hook: nothing, but quirky firmware still writes the separator.
            None if state.config.empty_member_quirk => members.push(String::new()),
            None => {}
        }
    }
    format!("{{\n{}\n}}\n", members.join(",\n"))
}

fn hex(v: u64) -> String {
    format!("0x{v:x}")
}

fn netdev(state: &RouterState) -> String {
    let (rx, tx) = state.netdev_wan();
    let mut pairs = vec![("BRIDGE".to_owned(), rx / 3 + 12_345, tx / 2 + 54_321)];
    if state.config.duplicate_internet_keys {
        // The inactive second WAN comes first; the web UI (and we) take the last pair.
        pairs.push(("INTERNET".to_owned(), 0x1f2e3d, 0x4c5b6a));
    }
    pairs.push(("INTERNET".to_owned(), rx, tx));
    pairs.push(("WIRED".to_owned(), tx / 2, rx / 2));
    pairs.push(("WIRELESS0".to_owned(), tx / 8, rx / 8));
    pairs.push(("WIRELESS1".to_owned(), tx / 3, rx / 3));
    let mask = if state.config.counters_32_bit {
        0xffff_ffff
    } else {
        u64::MAX
    };
    let body: Vec<String> = pairs
        .iter()
        .map(|(n, r, t)| format!("\"{n}_rx\":\"{}\",\"{n}_tx\":\"{}\"", hex(r & mask), hex(t & mask)))
        .collect();
    format!("\"netdev\":{{ {}}}", body.join(","))
}

fn cpu_usage(state: &RouterState) -> String {
    // Jiffies tick with time (100 per second per core), busy ~6 % plus the traffic's share.
    let up = state.uptime();
    let cores: Vec<String> = (1..=4)
        .map(|i| {
            format!(
                "\"cpu{i}_total\":\"{}\",\"cpu{i}_usage\":\"{}\"",
                state.cpu_total / 4 + up * 100 + i * 7,
                state.cpu_busy / 4 + up * (4 + i) + i
            )
        })
        .collect();
    format!("\"cpu_usage\":{{{}}}", cores.join(","))
}

fn memory_usage(state: &RouterState) -> String {
    let total = 1_048_576u64;
    let used = 600_000 + (state.clients.len() as u64 * 2_000) % 300_000;
    format!(
        "\"memory_usage\":{{\"mem_total\":\"{total}\",\"mem_free\":\"{}\",\"mem_used\":\"{used}\"}}",
        total - used
    )
}

/// `Tue, 24 Nov 2026 23:59:00 +0000(64882 secs since boot)`: no space before the parenthesis.
pub fn uptime_text(state: &RouterState) -> String {
    format!(
        "{}({} secs since boot)",
        rfc1123(state.clock.now().max(0) as u64),
        state.uptime()
    )
}

fn rfc1123(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86_400) as i64;
    let (y, m, d) = crate::calendar::civil_from_days(days);
    let rem = secs % 86_400;
    format!(
        "{}, {d:02} {} {y} {:02}:{:02}:{:02} +0000",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn client_entry(c: &EmuClient) -> Value {
    let wired = c.is_wl == 0;
    json!({
        "type": "0", "defaultType": "0", "name": c.name, "nickName": c.nick, "ip": if c.online { c.ip.as_str() } else { "" },
        "mac": c.mac.to_string().to_uppercase(), "from": "networkmapd", "macRepeat": "0", "isGateway": "0",
        "isWebServer": "0", "isPrinter": "0", "isITunes": "0", "dpiType": "", "dpiDevice": "", "vendor": c.vendor,
        "isWL": c.is_wl.to_string(), "isGN": "", "isOnline": if c.online { "1" } else { "0" }, "ssid": "",
        "isLogin": "0", "opMode": "0", "rssi": if wired { "0".to_owned() } else { c.rssi.to_string() },
        "curTx": if wired { "" } else { "866.7" }, "curRx": if wired { "" } else { "780" }, "totalTx": "", "totalRx": "",
        "wlConnectTime": if wired { "" } else { "12:34:56" }, "ipMethod": "DHCP", "ROG": "0", "group": "",
        "callback": "", "keeparp": "", "qosLevel": "", "wtfast": "0", "internetMode": "allow", "internetState": "1",
        "amesh_isReClient": "0", "amesh_papMac": "", "amesh_bind_mac": "", "amesh_bind_band": "0"
    })
}

/// The `get_clientlist()` object: MAC keys beside `maclist` and `ClientAPILevel`.
pub fn client_list(state: &RouterState) -> String {
    let mut obj = serde_json::Map::new();
    for c in &state.clients {
        obj.insert(c.mac.to_string().to_uppercase(), client_entry(c));
    }
    let maclist: Vec<String> = state.clients.iter().map(|c| c.mac.to_string().to_uppercase()).collect();
    obj.insert("maclist".into(), json!(maclist));
    obj.insert("ClientAPILevel".into(), json!("5"));
    Value::Object(obj).to_string()
}

pub fn nvram(state: &RouterState, name: &str) -> String {
    let c = &state.config;
    match name {
        "productid" => c.model.clone(),
        "firmver" => c.firmver.clone(),
        "buildno" => c.buildno.clone(),
        "extendno" => c.extendno.clone(),
        "label_mac" | "lan_hwaddr" => c.mac.to_string().to_uppercase(),
        "wan_hwaddr" => "04:42:1A:10:20:34".into(),
        "lan_ipaddr" => c.lan_ip.clone(),
        "wan0_ipaddr" => c.wan_ip.clone(),
        "serial_no" => "N1IG0000000000".into(),
        "rc_support" if c.dns_analyzer => {
            "mssid 2.4G 5G usbX1 update switchctrl manual_stb 11AX wifi6e amas dns_dpi dualwan".into()
        }
        "rc_support" => "mssid 2.4G 5G usbX1 update switchctrl manual_stb 11AX wifi6e amas bwdpi dualwan".into(),
        "bwdpi_db_enable" if c.dns_analyzer => String::new(),
        "bwdpi_db_enable" => if c.traffic_analyzer { "1" } else { "0" }.into(),
        "dns_dpi_trf_analysis" if c.dns_analyzer => if c.traffic_analyzer { "1" } else { "0" }.into(),
        "http_enable" => "2".into(),
        "https_lanport" => "8443".into(),
        "led_val" => "0".into(),
        _ => String::new(),
    }
}

pub fn coretmp(state: &RouterState) -> String {
    let wobble = (state.uptime() / 60 % 5) as f64;
    format!(
        "\u{feff}curr_coreTmp_wl0_raw = \"{}&deg;C\";\ncurr_coreTmp_wl1_raw = \"{}&deg;C\";\ncurr_coreTmp_wl2_raw = \"<i>disabled</i>\";\ncurr_cpuTemp = \"{:.3}\";\nfanctrl_info = \"\";\n",
        48.0 + wobble,
        52.0 + wobble,
        61.25 + wobble
    )
}

/// 386/388 `update_clients.asp`: the hook object embedded in JavaScript.
pub fn update_clients(state: &RouterState) -> String {
    format!(
        "\u{feff}originDataTmp = originData;\noriginData = {{\nfromNetworkmapd : [{}],\nnmpClient : [{{}}]\n}}\nnetworkmap_fullscan = '2';\nif(networkmap_fullscan == 2) genClientList();\n",
        client_list(state)
    )
}

/// `ajax_onboarding.asp`: the router as the only AiMesh node; its client list holds only
/// clients online now (asus.md §10).
pub fn onboarding(state: &RouterState) -> String {
    let mac = state.config.mac.to_string().to_uppercase();
    let by_band = |band: u8| -> Vec<String> {
        state
            .clients
            .iter()
            .filter(|c| c.online && c.is_wl == band)
            .map(|c| c.mac.to_string().to_uppercase())
            .collect()
    };
    let node = json!([[{
        "alias": "Router", "model_name": state.config.model, "product_id": state.config.model,
        "fwver": format!("{}.{}_{}", state.config.firmver, state.config.buildno, state.config.extendno),
        "ip": state.config.lan_ip, "mac": mac, "online": "1", "level": "0", "config": {}, "capability": {},
    }]]);
    let wclients = json!([{ mac.clone(): { "2G": by_band(1), "5G": by_band(2), "6G": by_band(3) } }]);
    let mut all = serde_json::Map::new();
    let entry = |band: u8| -> Value {
        let map: serde_json::Map<String, Value> = state
            .clients
            .iter()
            .filter(|c| c.online && c.is_wl == band)
            .map(|c| {
                (
                    c.mac.to_string().to_uppercase(),
                    json!({"ip": c.ip, "rssi": c.rssi.to_string()}),
                )
            })
            .collect();
        Value::Object(map)
    };
    all.insert(
        mac.clone(),
        json!({"2G": entry(1), "5G": entry(2), "6G": entry(3), "wired_mac": entry(0)}),
    );
    format!(
        "get_onboardinglist = [{{}}][0];\nget_cfg_clientlist = {node}[0];\nget_onboardingstatus = [{{\"cfg_obstatus\":\"1\"}}][0];\nget_wclientlist = {wclients}[0];\nget_allclientlist = [{}][0];\n",
        Value::Object(all)
    )
}

pub fn status_xml(state: &RouterState) -> String {
    format!(
        "\u{feff}<?xml version=\"1.0\" ?>\n<devicemap>\n<wan>0</wan>\n<sys>uptimeStr={}</sys>\n</devicemap>\n",
        uptime_text(state)
    )
}

/// `getWanTraffic.asp` / `getAppTraffic.asp`: two lines of JavaScript around a JSON array, cut
/// at the firmware's 8000-byte output buffer.
pub fn traffic(state: &RouterState, app_page: bool, fields: &[(String, String)]) -> String {
    const LEN_MAX: usize = 8000;
    let get = |k: &str| {
        fields
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let client = get("client");
    let mode = get("mode");
    let dura: i64 = get("dura").parse().unwrap_or(24);
    let date: i64 = get("date").parse().unwrap_or_else(|_| state.clock.now());
    let db = &state.ta;
    let enabled = state.config.traffic_analyzer && state.ta_fault != Some(super::state::TaFault::Empty);
    let filter = (client != "all" && !client.is_empty()).then_some(client);
    let array = match (mode, app_page) {
        _ if !enabled && mode == "detail" => "[]".to_owned(),
        ("hour", false) => pairs(if enabled && state.config.dns_analyzer {
            db.hour_buckets_dns(filter, date)
        } else if enabled {
            db.hour_buckets(filter, date)
        } else {
            vec![[0, 0]; 24]
        }),
        ("day", false) => {
            let days = if dura == 31 { 31 } else { 7 };
            pairs(if enabled {
                db.day_buckets(filter, date, days)
            } else {
                vec![[0, 0]; days as usize]
            })
        }
        ("detail", _) => {
            let span = if dura == 24 { 86_400 } else { dura * 86_400 };
            // getAppTraffic groups by client; getWanTraffic by app.
            let rows = db.detail(app_page, filter, date, span);
            let items: Vec<String> = rows
                .iter()
                .map(|(k, tx, rx)| format!("[{},{tx},{rx}]", json!(k)))
                .collect();
            format!("[{}]", items.join(","))
        }
        _ => "[]".to_owned(),
    };
    let mut body = format!("var array_statistics = new Array();\narray_statistics = {array};\n");
    if body.len() > LEN_MAX {
        body.truncate(LEN_MAX);
    }
    if state.ta_fault == Some(super::state::TaFault::Truncated) {
        body.truncate(body.len() * 2 / 3);
    }
    body
}

/// `getTraffic.asp`: the template's two lists (asus.md §5), from the same traffic model as
/// the Traffic Analyzer's rows, plus whatever bad entries a test injects; `odd`: this reply's
/// table is odd that way.
pub fn live_traffic(state: &RouterState, odd: Option<super::state::OddTable>) -> String {
    use super::state::OddTable;
    let mut counters = state.live_counters();
    match odd {
        Some(OddTable::Empty) => counters.clear(),
        Some(OddTable::Thousandth) => counters.iter_mut().for_each(|(_, c)| *c = [c[0] / 1000, c[1] / 1000]),
        Some(OddTable::Twice) | None => {}
    }
    let mut entries: Vec<String> = counters
        .iter()
        .map(|(mac, [tx, rx])| format!("[\"{mac}\",{tx},{rx}]"))
        .collect();
    if odd == Some(OddTable::Twice) {
        entries.extend(
            counters
                .iter()
                .map(|(mac, [tx, rx])| format!("[\"{mac}\",{},{}]", tx / 2, rx / 2)),
        );
    }
    entries.extend(state.live_faults.extra_entries.iter().cloned());
    let (tx, rx) = counters.iter().fold((0u64, 0u64), |(t, r), (_, v)| {
        (t.wrapping_add(v[0]), r.wrapping_add(v[1]))
    });
    let mask = if state.config.live_counters_32_bit {
        0xffff_ffff
    } else {
        u64::MAX
    };
    let mut body = format!(
        "var array_traffic = new Array();\narray_traffic = [{}];\nvar router_traffic = new Array();\nrouter_traffic = [{},{}];\n",
        entries.join(","),
        tx & mask,
        rx & mask
    );
    if state.live_faults.truncated
        && let Some(cut) = body.rfind("],")
    {
        body.truncate(cut - 3);
    }
    if state.live_faults.padding > 0 {
        body.push_str("/*");
        body.extend(std::iter::repeat_n(' ', state.live_faults.padding));
        body.push_str("*/\n");
    }
    body
}

fn pairs(list: Vec<[u64; 2]>) -> String {
    let items: Vec<String> = list.iter().map(|[tx, rx]| format!("[{tx},{rx}]")).collect();
    format!("[{}]", items.join(","))
}
