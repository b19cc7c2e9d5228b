//! `/proc/net/dev`: two header lines, then `name: 16 counters` per device. Old kernels print no
//! space after the colon and columns drift as numbers grow, so lines are split at the last `:`
//! and the rest on whitespace (see shared/protocols/vnstat.md §6).

/// The counters of one interface that the bridge uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub name: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// Parses the whole file. Lines that cannot be read are returned by name in the second vector
/// so the caller can log them; they never hide the other interfaces.
pub fn parse(text: &str) -> Result<(Vec<InterfaceCounters>, Vec<String>), ParseError> {
    let mut lines = text.lines();
    let header_ok = lines.next().is_some_and(|l| l.contains('|')) && lines.next().is_some_and(|l| l.contains('|'));
    if !header_ok {
        return Err(ParseError(
            "/proc/net/dev does not start with its two header lines".into(),
        ));
    }
    let mut counters = Vec::new();
    let mut bad = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        match parse_line(line) {
            Some(c) => counters.push(c),
            None => bad.push(line.trim().chars().take(80).collect()),
        }
    }
    Ok((counters, bad))
}

fn parse_line(line: &str) -> Option<InterfaceCounters> {
    let (name, rest) = line.rsplit_once(':')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let fields: Vec<u64> = rest.split_whitespace().map(str::parse).collect::<Result<_, _>>().ok()?;
    if fields.len() < 16 {
        return None;
    }
    Some(InterfaceCounters {
        name: name.to_owned(),
        rx_bytes: fields[0],
        rx_packets: fields[1],
        tx_bytes: fields[8],
        tx_packets: fields[9],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN12: &str = include_str!("../../../tests/fixtures/procnet/proc-net-dev.debian12.txt");

    #[test]
    fn parses_a_real_capture() {
        let (ifaces, bad) = parse(DEBIAN12).unwrap();
        assert!(bad.is_empty());
        let names: Vec<_> = ifaces.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["lo", "ifb0", "ifb1", "eth0"]);
        let eth0 = &ifaces[3];
        assert_eq!((eth0.rx_bytes, eth0.tx_bytes), (345_515_282, 847_619));
        assert_eq!((eth0.rx_packets, eth0.tx_packets), (11_752, 8_290));
    }

    #[test]
    fn handles_old_kernels_without_space_after_colon() {
        let text = "Inter-| a | b\n face |x|y\n  eth0:3742334317097 43769887866 0 0 0 0 0 0 123 456 0 0 0 0 0 0\n";
        let (ifaces, _) = parse(text).unwrap();
        assert_eq!(ifaces[0].rx_bytes, 3_742_334_317_097);
        assert_eq!(ifaces[0].tx_bytes, 123);
    }

    #[test]
    fn bad_lines_are_reported_not_fatal() {
        let text = "Inter-| a | b\n face |x|y\n  eth0: 1 2 3\n  wg0: 10 1 0 0 0 0 0 0 20 2 0 0 0 0 0 0\n garbage\n";
        let (ifaces, bad) = parse(text).unwrap();
        assert_eq!(ifaces.len(), 1);
        assert_eq!(ifaces[0].name, "wg0");
        assert_eq!(bad.len(), 2);
    }

    #[test]
    fn rejects_something_else_entirely() {
        assert!(parse("").is_err());
        assert!(parse("{\"json\": true}").is_err());
    }
}
