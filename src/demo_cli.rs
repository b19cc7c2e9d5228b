//! `bandwidth2mqtt demo`: options, terminal detection and Ctrl-C; the demo itself is
//! `bandwidth2mqtt::demo`.

use std::io::IsTerminal;
use std::process::ExitCode;

use bandwidth2mqtt::demo::{self, Options, Screen};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Simulated seconds per real second: 60 runs an hour a minute (Traffic Analyzer hours,
    /// vnstat saves, the traffic itself).
    #[arg(long, default_value_t = 1.0, value_name = "N", value_parser = parse_speed)]
    speed: f64,
    /// Use this broker (mqtt://host:port) instead of looking for one.
    #[arg(long, value_name = "URL")]
    mqtt_url: Option<String>,
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && (1.0..=100_000.0).contains(&n) => Ok(n),
        _ => Err("a number from 1 to 100000".into()),
    }
}

pub fn main(args: &DemoArgs, log_level: Option<&str>) -> ExitCode {
    // Warnings only unless asked: the table is the demo's output. RUST_LOG still wins.
    crate::init_tracing_as(log_level.unwrap_or("warn"), false);
    let runtime = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = Options {
        speed: args.speed,
        mqtt_url: args.mqtt_url.clone(),
        lookup: None,
    };
    let screen = if std::io::stdout().is_terminal() {
        Screen::Terminal
    } else {
        Screen::Plain
    };
    let result = runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        tokio::spawn(crate::stop_on_signal(shutdown.clone()));
        let mut out = std::io::stdout();
        demo::run(options, shutdown, screen, &mut out).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bandwidth2mqtt demo: {e}");
            ExitCode::FAILURE
        }
    }
}
