//! Command line, tracing and signal wiring; everything else lives in the library.

#[cfg(feature = "demo")]
mod demo_cli;

use std::path::PathBuf;
use std::process::ExitCode;

use bandwidth2mqtt::{bridge, config};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// Per-device bandwidth from vnstat, ASUS routers and TP-Link Deco meshes, published to Home
/// Assistant over MQTT.
#[derive(Parser)]
#[command(name = "bandwidth2mqtt", version, about)]
struct Cli {
    /// Configuration file (default: $BANDWIDTH2MQTT_CONFIG, then ./bandwidth2mqtt.toml).
    #[arg(short, long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log level; overrides `bridge.log_level` (`RUST_LOG` still wins).
    #[arg(long, global = true, value_name = "LEVEL", value_parser = LOG_LEVELS)]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// What `--log-level` and `bridge.log_level` accept; clap refuses anything else with exit 2,
/// naming the flag, before any configuration is read.
const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

#[derive(Subcommand)]
enum Command {
    /// Run the bridge until SIGINT/SIGTERM (the default).
    Run,
    /// Validate the configuration and print it, secrets as ***.
    CheckConfig,
    /// Poll every source once, publish, exit.
    Once {
        /// Publish nothing; print each message as one JSON line instead.
        #[arg(long)]
        dry_run: bool,
    },
    /// On a server: publish this machine's counters for a main bridge elsewhere.
    Agent,
    /// Exit 0 if the running bridge (or agent) is connected to the broker (Docker HEALTHCHECK).
    Health,
    /// Run an emulated household (ASUS router, Deco mesh, vnstat servers) with live traffic,
    /// bridged to a broker and shown as a live table; Ctrl-C stops it.
    #[cfg(feature = "demo")]
    Demo(demo_cli::DemoArgs),
    /// A build without the demo (the shipped binary) says how to get one.
    #[cfg(not(feature = "demo"))]
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo brings its own configuration; a user's config file plays no part in it.
    #[cfg(feature = "demo")]
    if let Some(Command::Demo(args)) = &cli.command {
        return demo_cli::main(args, cli.log_level.as_deref());
    }
    // The shipped binary carries no emulators and no demo broker (Cargo.toml's features).
    #[cfg(not(feature = "demo"))]
    if let Some(Command::Demo { .. }) = &cli.command {
        eprintln!(
            "bandwidth2mqtt: this build has no demo; from the source: cargo run --release --features demo -- demo"
        );
        return ExitCode::from(2);
    }
    let loaded = match config::load(cli.config.as_deref()) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("bandwidth2mqtt: {e}");
            return ExitCode::from(2);
        }
    };
    let command = cli.command.unwrap_or(Command::Run);
    if let Command::Health = command {
        let dir = &loaded.settings.bridge.state_dir;
        return match bridge::health::check(dir, bridge::health::now_s()) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(why) => {
                eprintln!("bandwidth2mqtt: unhealthy: {why}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::CheckConfig = command {
        println!(
            "# bandwidth2mqtt {} — effective configuration from {}",
            bridge::VERSION,
            loaded.source
        );
        print!("{}", config::render(&loaded.settings));
        return ExitCode::SUCCESS;
    }
    // Both were checked: the flag by clap, the key by config validation.
    let level = cli.log_level.as_deref().unwrap_or(&loaded.settings.bridge.log_level);
    init_tracing_as(level, loaded.settings.bridge.log_format == "json");
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        match command {
            Command::Once { dry_run } => once(loaded, dry_run).await,
            Command::Agent => agent(loaded).await,
            _ => run(loaded, cli.config).await,
        }
    })
}

/// Runs the bridge; the `restart` command runs it again with the configuration read anew.
async fn run(mut loaded: config::LoadedConfig, path: Option<PathBuf>) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    loop {
        match bridge::run_until(bridge::Parts::new(loaded), shutdown.clone()).await {
            Ok(bridge::Stopped::Shutdown) => return ExitCode::SUCCESS,
            Ok(bridge::Stopped::Restart) => match config::load(path.as_deref()) {
                Ok(fresh) => {
                    tracing::info!(config = %fresh.source, "Restarting on request.");
                    loaded = fresh;
                }
                Err(e) => {
                    tracing::error!(error = %e, "Cannot restart: the configuration is now invalid.");
                    return ExitCode::FAILURE;
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "Bridge stopped on a fatal error.");
                return ExitCode::FAILURE;
            }
        }
    }
}

async fn agent(loaded: config::LoadedConfig) -> ExitCode {
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    match bandwidth2mqtt::agent::run(loaded, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "Agent stopped on a fatal error.");
            ExitCode::FAILURE
        }
    }
}

async fn once(loaded: config::LoadedConfig, dry_run: bool) -> ExitCode {
    match bridge::once(bridge::Parts::new(loaded), dry_run).await {
        Ok(outcome) => {
            for m in &outcome.messages {
                let line = serde_json::json!({"topic": m.topic, "retain": m.retain, "payload": &*m.payload});
                println!("{line}");
            }
            if outcome.failed_sources.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "once failed.");
            ExitCode::FAILURE
        }
    }
}

pub(crate) async fn stop_on_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("Cannot install signal handlers; stop with SIGKILL.");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    shutdown.cancel();
}

/// The process's runtime (two workers: the bridge is I/O-bound), with the TLS provider installed.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tune_malloc();
    // Every HTTP and MQTT client gets its TLS provider explicitly; this process-wide default
    // only guards against a client built without one (reqwest would panic).
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("bandwidth2mqtt: cannot start the async runtime: {e}");
            ExitCode::FAILURE
        })
}

/// glibc malloc tuned for a process whose memory use jumps once (the first round renders every
/// device; a 5 000-client poll is a few MB of JSON) and then sits still: fixed 128 kB mmap and
/// trim thresholds. By default glibc raises both after the first large buffer is freed (up to
/// 32 and 64 MB), after which memory the first round and each poll free is kept. bench/run.py,
/// Deco 5 000 clients: private memory 100 -> 90 MB, CPU per poll unchanged. The environment
/// (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`) still wins. One arena
/// (`MALLOC_ARENA_MAX=1`) would save ~10 MB more but cost ~15 % more CPU per poll (lock
/// contention between the runtime's threads), so it is left to the user (README).
/// Must run before any thread starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (var, param, value) in [
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 128 * 1024),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: mallopt only changes a tunable; no other thread exists yet.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}

/// Logs go to stderr (stdout is for `once --dry-run` and `check-config`); `RUST_LOG` wins over
/// `--log-level` and `bridge.log_level`. `json`: one object per line for log shippers, the
/// event's fields (`message`, `source`, `device`, …) at the top level next to `timestamp`,
/// `level` and `target` (the module), so a shipper can filter on them without unnesting.
pub(crate) fn init_tracing_as(level: &str, json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("warn,bandwidth2mqtt={level}")));
    use std::io::IsTerminal;
    if json {
        tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_target(true)
            .init();
        return;
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
