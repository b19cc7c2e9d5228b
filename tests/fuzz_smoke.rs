//! CI smoke of every fuzz target (see fuzz/README.md for the real fuzzers): each entry point of
//! `bandwidth2mqtt::fuzzing` runs over its committed seeds in `fuzz/seeds/<target>/`, then over
//! deterministic mutations of them (a seeded PRNG, so a failure reproduces exactly). The test
//! profile has overflow checks on, so an overflow is a failure here as in `cargo fuzz`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::{Path, PathBuf};

use bandwidth2mqtt::fuzzing::TARGETS;

/// Mutations per target; the slow targets (RSA, config files, sources) get fewer.
const MUTATIONS: usize = 3_000;

/// Tokens that reach the edges the parsers must survive: extreme numbers, JSON/TOML/JS syntax.
const TOKENS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "-9223372036854775808",
    "4294967296",
    "0xffffffffffffffff",
    "-1",
    "0",
    "1e308",
    "1e306",
    "-1e400",
    "NaN",
    "Number.NaN",
    "99999",
    "\"",
    "\\",
    "\\u0000",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "=",
    "\n",
    " secs since boot)",
    "(",
    "\u{feff}",
    "\u{ff}",
    "y\"",
    "500000000000y",
];

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at.min(end)..end);
            }
            3 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                data.splice(at..at, token.iter().copied());
            }
            4 => {
                // Overwrite a run of digits, where numbers live.
                let token = TOKENS[rng.below(6)].as_bytes();
                let end = (at + token.len()).min(data.len());
                data.splice(at..end, token.iter().copied());
            }
            5 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let to = from + rng.below(other.len() - from + 1);
                data.splice(at..at, other[from..to].iter().copied());
            }
            6 => data.truncate(at),
            _ => {
                let bytes: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.next() as u8).collect();
                data.splice(at..at, bytes);
            }
        }
    }
    data
}

fn seeds_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target)
}

fn load_seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = seeds_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("{}: {e}", f.display())))
        .collect()
}

/// Runs `input` through the target; on a panic, shows the input so it can be saved and replayed
/// with `cargo fuzz run <target> <file>`.
fn run_one(target: &str, entry: fn(&[u8]), input: &[u8], what: &str) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(input))) {
        eprintln!(
            "fuzz smoke: {target} panicked on {what}; input ({} bytes): {:?}",
            input.len(),
            String::from_utf8_lossy(input)
        );
        resume_unwind(panic);
    }
}

fn smoke(target: &str, mutations: usize) {
    let entry = TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz entry point named {target}"));
    let seeds = load_seeds(target);
    assert!(!seeds.is_empty(), "{target} has no committed seeds");
    for (i, seed) in seeds.iter().enumerate() {
        run_one(target, entry, seed, &format!("seed {i}"));
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..mutations {
        let input = mutate(&mut rng, &seeds);
        run_one(target, entry, &input, &format!("mutation {i}"));
    }
}

macro_rules! smoke_tests {
    ($($target:ident: $mutations:expr,)*) => {
        $(
            #[test]
            fn $target() {
                smoke(stringify!($target), $mutations);
            }
        )*

        /// Every entry point has a smoke test here and a cargo-fuzz target in `fuzz/`.
        #[test]
        fn every_target_is_smoked_and_fuzzed() {
            let smoked = [$(stringify!($target)),*];
            let entries: Vec<&str> = TARGETS.iter().map(|(name, _)| *name).collect();
            assert_eq!(entries, smoked, "TARGETS and the smoke tests disagree");
            for name in entries {
                let target = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fuzz/fuzz_targets/{name}.rs"));
                let text = std::fs::read_to_string(&target).unwrap_or_else(|e| panic!("{}: {e}", target.display()));
                assert!(text.contains(&format!("fuzzing::{name}(")), "{} does not call {name}", target.display());
            }
        }
    };
}

smoke_tests! {
    vnstat_json: MUTATIONS,
    proc_net_dev: MUTATIONS,
    asus_hookjson: MUTATIONS,
    asus_appget: MUTATIONS / 3,
    asus_js: MUTATIONS,
    asus_uptime: MUTATIONS,
    asus_traffic_analyzer: MUTATIONS,
    asus_live: MUTATIONS / 3,
    deco_envelope: MUTATIONS / 3,
    deco_json: MUTATIONS,
    config_toml: MUTATIONS / 6,
    state_roundtrip: MUTATIONS,
    channel_sequence: MUTATIONS,
}
