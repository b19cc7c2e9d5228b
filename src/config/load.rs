use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};

use super::{Secret, Settings, validate};

/// Environment variables that override keys: `BANDWIDTH2MQTT__MQTT__URL` → `mqtt.url`.
pub const ENV_PREFIX: &str = "BANDWIDTH2MQTT";
/// Names the config file when `-c` is not given.
pub const ENV_CONFIG_FILE: &str = "BANDWIDTH2MQTT_CONFIG";
pub const DEFAULT_CONFIG_FILE: &str = "./bandwidth2mqtt.toml";

/// Keys whose value is a list; from the environment they are written comma-separated.
const LIST_KEYS: [&str; 5] = ["interfaces", "exclude", "include", "command", "connections"];

/// Where the configuration came from, for messages and `check-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    File(PathBuf),
    Defaults,
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Defaults => f.write_str("built-in defaults"),
        }
    }
}

/// A configuration problem, always naming where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub source_name: String,
    /// Dotted key such as `mqtt.url`; `None` for file-level problems (unreadable, bad TOML).
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => {
                write!(
                    f,
                    "invalid configuration ({}): key `{key}`: {}",
                    self.source_name, self.message
                )?;
                let var = env_var_for(key);
                if std::env::var_os(&var).is_some() {
                    write!(f, " (value from environment variable {var})")?;
                }
                Ok(())
            }
            None => write!(f, "invalid configuration ({}): {}", self.source_name, self.message),
        }
    }
}

impl ConfigError {
    pub fn at(source: &ConfigSource, key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            source_name: source.to_string(),
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

/// The environment variable that overrides a dotted key.
pub fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}__{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Validated settings plus facts derived while validating them.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub settings: Settings,
    pub source: ConfigSource,
    pub mqtt_url: validate::MqttUrl,
}

/// Config lookup order: `-c FILE`, `$BANDWIDTH2MQTT_CONFIG`, `./bandwidth2mqtt.toml`, defaults.
pub fn resolve_path(cli: Option<&Path>) -> Result<ConfigSource, ConfigError> {
    let explicit = cli
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os(ENV_CONFIG_FILE).map(PathBuf::from));
    match explicit {
        Some(path) if path.is_file() => Ok(ConfigSource::File(path)),
        Some(path) => Err(ConfigError {
            source_name: path.display().to_string(),
            key: None,
            message: "the configuration file does not exist or is not a file".into(),
        }),
        None if Path::new(DEFAULT_CONFIG_FILE).is_file() => Ok(ConfigSource::File(PathBuf::from(DEFAULT_CONFIG_FILE))),
        None => Ok(ConfigSource::Defaults),
    }
}

/// Loads, overrides from the environment, resolves `password_file`s and validates.
pub fn load(cli: Option<&Path>) -> Result<LoadedConfig, ConfigError> {
    let source = resolve_path(cli)?;
    load_from(source, std::env::vars().collect())
}

/// [`load`] with the environment passed in, so tests need not touch the process environment.
pub fn load_from(source: ConfigSource, env: BTreeMap<String, String>) -> Result<LoadedConfig, ConfigError> {
    // Values from the environment are never repeated in a message: any of them may be a
    // secret, and the message names the variable anyway.
    let redact: Vec<String> = env
        .iter()
        .filter(|(k, v)| k.starts_with(&format!("{ENV_PREFIX}__")) && !v.trim().is_empty())
        .map(|(_, v)| v.clone())
        .collect();
    let hide = |mut e: ConfigError| {
        // `config` may have changed the case of what it quotes.
        for value in &redact {
            for spelling in [value.clone(), value.to_lowercase(), value.to_uppercase()] {
                e.message = e.message.replace(spelling.as_str(), "***");
            }
        }
        e
    };
    load_unredacted(source, env).map_err(hide)
}

fn load_unredacted(source: ConfigSource, env: BTreeMap<String, String>) -> Result<LoadedConfig, ConfigError> {
    let file_error = |message: String| ConfigError {
        source_name: source.to_string(),
        key: None,
        message,
    };
    let mut builder = Config::builder();
    if let ConfigSource::File(path) = &source {
        let text = std::fs::read_to_string(path).map_err(|e| file_error(format!("cannot read the file: {e}")))?;
        // Our own syntax check first: the `config` crate's message quotes the offending line,
        // and that line may be `password = "…"`. Only the position and the kind of error.
        let table = text
            .parse::<toml::Table>()
            .map_err(|e| file_error(toml_syntax_error(&text, &e)))?;
        if let Some(key) = path_expression_key(&table) {
            return Err(file_error(format!(
                "invalid key `{key}`: `[` and `]` cannot appear in a key"
            )));
        }
        builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
    }
    let (environment, lists) = environment(env);
    builder = builder.add_source(environment);
    for (key, items) in lists {
        builder = builder
            .set_override(key.as_str(), items)
            .map_err(|e| file_error(format!("environment override of `{key}`: {e}")))?;
    }
    let config = builder.build().map_err(|e| file_error(e.to_string()))?;

    let mut settings: Settings = serde_path_to_error::deserialize(config).map_err(|e| {
        let key = e.path().to_string();
        let message = clean_message(&e.inner().to_string(), &key);
        ConfigError {
            source_name: source.to_string(),
            key: (key != ".").then_some(key),
            message,
        }
    })?;
    resolve_password_files(&mut settings, &source)?;
    let mqtt_url = validate::validate(&settings, &source)?;
    Ok(LoadedConfig {
        settings,
        source,
        mqtt_url,
    })
}

/// Splits the environment into plain overrides (handed to `config`) and list-valued keys, which
/// `config` would only split with `try_parsing`, and that would also turn a password `0123`
/// into the number 123. Lists are comma-separated: `…__COMMAND=ssh,beast,vnstat,--json,f,1`.
fn environment(env: BTreeMap<String, String>) -> (Environment, Vec<(String, Vec<String>)>) {
    let prefix = format!("{ENV_PREFIX}__");
    let mut plain = BTreeMap::new();
    let mut lists = Vec::new();
    for (name, value) in env {
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        if rest.contains(['[', ']']) {
            tracing::warn!(variable = %name, "Ignoring an environment override whose name has `[` or `]`.");
            continue;
        }
        let key = rest.to_ascii_lowercase().replace("__", ".");
        if LIST_KEYS.iter().any(|l| key == *l || key.ends_with(&format!(".{l}"))) {
            let items = value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect();
            lists.push((key, items));
        } else {
            plain.insert(name, value);
        }
    }
    let environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .source(Some(plain.into_iter().collect()));
    (environment, lists)
}

/// A key with `[` or `]`, at any depth. The `config` crate reads every key as a path
/// expression, where `a[44434444]` is an index: it builds an array that long (found by fuzzing:
/// one quoted key of 150 bytes took 2.8 GB). None of our keys has brackets.
fn path_expression_key(table: &toml::Table) -> Option<String> {
    table.iter().find_map(|(key, value)| {
        if key.contains(['[', ']']) {
            return Some(key.chars().take(60).collect());
        }
        match value {
            toml::Value::Table(inner) => path_expression_key(inner),
            toml::Value::Array(items) => items.iter().find_map(|item| match item {
                toml::Value::Table(inner) => path_expression_key(inner),
                _ => None,
            }),
            _ => None,
        }
    })
}

/// "TOML syntax error at line 3, column 12: invalid string": never the line's text.
fn toml_syntax_error(text: &str, e: &toml::de::Error) -> String {
    let Some(span) = e.span() else {
        return "TOML syntax error".into();
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count() + 1).unwrap_or(1);
    // The first line of the message is the kind of error; the rest may quote input.
    let kind = e.message().lines().next().unwrap_or("").trim();
    format!("TOML syntax error at line {line}, column {column}: {kind}")
}

/// `config` appends "for key `x`" and its origin to some messages; the key is already ours.
fn clean_message(message: &str, key: &str) -> String {
    let mut text = message.to_owned();
    if let Some(pos) = text.find(" for key `") {
        text.truncate(pos);
    }
    if text.is_empty() {
        format!("bad value for {key}")
    } else {
        text
    }
}

/// Every `password` has a `password_file` twin (Docker secrets); the file wins and is read now,
/// so a missing secret fails at start-up, naming the key.
fn resolve_password_files(settings: &mut Settings, source: &ConfigSource) -> Result<(), ConfigError> {
    let mqtt = &mut settings.mqtt;
    resolve_one(&mut mqtt.password, mqtt.password_file.as_deref(), "mqtt", source)?;
    super::tables::resolve_files(settings, source)?;
    for (name, agent) in &mut settings.agents {
        resolve_key(
            &mut agent.key,
            agent.key_file.as_deref(),
            &format!("agents.{name}"),
            source,
        )?;
    }
    let agent = &mut settings.agent;
    resolve_key(&mut agent.key, agent.key_file.as_deref(), "agent", source)?;
    Ok(())
}

/// An agent key and its `key_file` twin: read now, surrounding white space dropped, at least
/// 16 characters (`openssl rand -hex 32` gives 64).
fn resolve_key(
    key: &mut Option<Secret>,
    file: Option<&Path>,
    table: &str,
    source: &ConfigSource,
) -> Result<(), ConfigError> {
    if let Some(file) = file {
        let name = format!("{table}.key_file");
        if key.is_some() {
            return Err(ConfigError::at(source, name, "set either key or key_file, not both"));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| ConfigError::at(source, &name, format!("cannot read {}: {e}", file.display())))?;
        *key = Some(Secret::new(text.trim()));
    }
    if let Some(k) = key
        && k.expose().trim().len() < 16
    {
        return Err(ConfigError::at(
            source,
            format!("{table}.key"),
            "an agent key must be at least 16 characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    Ok(())
}

pub(crate) fn resolve_one(
    password: &mut Option<Secret>,
    file: Option<&Path>,
    table: &str,
    source: &ConfigSource,
) -> Result<(), ConfigError> {
    crate::table::read_password_file(password, file, table).map_err(|(key, m)| ConfigError::at(source, key, m))
}

/// `check-config` output: the effective configuration as TOML with every secret as `***`.
pub fn render(settings: &Settings) -> String {
    toml::to_string(settings).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
}
