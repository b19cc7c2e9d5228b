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
    /// Use this broker instead of looking for one: mqtt://host:1883, or
    /// mqtts://user:password@host:8883 (percent-encode `@` and `:` in them). The password is
    /// never printed; set the URL in the environment to keep it out of `ps` too.
    #[arg(
        long,
        value_name = "URL",
        env = "BANDWIDTH2MQTT_DEMO_MQTT_URL",
        hide_env_values = true
    )]
    mqtt_url: Option<String>,
    /// The CA certificate (PEM) that signed an mqtts:// broker's certificate, if no system
    /// root did.
    #[arg(long, value_name = "FILE", requires = "mqtt_url")]
    mqtt_ca_file: Option<std::path::PathBuf>,
}

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() && (1.0..=100_000.0).contains(&n) => Ok(n),
        _ => Err("a number from 1 to 100000".into()),
    }
}

pub fn main(args: &DemoArgs, log_level: Option<&str>) -> ExitCode {
    // A usage error like clap's (exit 2), but in our words: clap would quote the value, and
    // with it the password.
    if let Some(Err(e)) = args.mqtt_url.as_deref().map(demo::access::split_url) {
        eprintln!("bandwidth2mqtt demo: --mqtt-url: {e}");
        return ExitCode::from(2);
    }
    if let Some(Err(e)) = args.mqtt_ca_file.as_deref().map(std::fs::metadata) {
        let file = args
            .mqtt_ca_file
            .as_deref()
            .unwrap_or(std::path::Path::new(""))
            .display();
        eprintln!("bandwidth2mqtt demo: --mqtt-ca-file: cannot read {file}: {e}");
        return ExitCode::from(2);
    }
    // Warnings only unless asked: the table is the demo's output. RUST_LOG still wins.
    let logs = demo::logging::subscriber(
        log_level.unwrap_or("warn"),
        std::io::stderr,
        std::io::stderr().is_terminal(),
    );
    if let Err(e) = tracing_subscriber::util::SubscriberInitExt::try_init(logs) {
        eprintln!("bandwidth2mqtt demo: cannot set up logging: {e}");
    }
    let runtime = match crate::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let options = Options {
        speed: args.speed,
        mqtt_url: args.mqtt_url.clone(),
        mqtt_ca_file: args.mqtt_ca_file.clone(),
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
