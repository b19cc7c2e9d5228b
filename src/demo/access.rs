//! The broker the user pointed the demo at (`--mqtt-url mqtts://user:pass@host:8883`,
//! `--mqtt-ca-file`), split into what may be printed and what may not. The bridge's own
//! `mqtt.url` takes no credentials, so they go into its `username` and a `password_file`
//! (mode 0600, in the demo's scratch directory, removed on stop); the table's subscriber gets
//! them directly. The password is printed nowhere: the intro shows the URL without it, the
//! `mosquitto_sub` line a placeholder, and a bad URL's message never quotes the URL.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::config::{MqttTransport, MqttUrl, Secret};

/// Credentials and trust for a broker the demo did not start (empty for the ones it did).
#[derive(Debug, Clone, Default)]
pub struct Access {
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// CA of an `mqtts://` broker whose certificate is not signed by a system root.
    pub ca_file: Option<PathBuf>,
}

/// `--mqtt-url` taken apart: the URL without credentials, and the credentials.
pub fn split_url(text: &str) -> Result<(String, Access), String> {
    let (scheme, rest) = text
        .split_once("://")
        .ok_or("not a URL; write mqtt://host:1883 or mqtts://user:password@host:8883")?;
    let (userinfo, host_port) = match rest.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, rest),
    };
    let url = format!("{scheme}://{host_port}");
    // The bridge's own parser decides what a valid broker URL is; without the credentials, its
    // message cannot quote them.
    MqttUrl::parse(&url)?;
    let mut access = Access::default();
    if let Some(userinfo) = userinfo {
        let (user, password) = match userinfo.split_once(':') {
            Some((user, password)) => (user, Some(password)),
            None => (userinfo, None),
        };
        if user.is_empty() {
            return Err("the URL has credentials but no user name before `:`".into());
        }
        access.username = Some(crate::percent::decode(user));
        access.password = password.map(|p| Secret::new(crate::percent::decode(p)));
    }
    Ok((url, access))
}

impl Access {
    /// The `[mqtt]` lines for the bridge's configuration; writes the password file into `dir`.
    pub fn config_lines(&self, dir: &Path) -> std::io::Result<String> {
        let mut lines = String::new();
        if let Some(user) = &self.username {
            lines += &format!("username = {}\n", toml_string(user));
        }
        if let Some(password) = &self.password {
            let path = dir.join("mqtt_password");
            write_private(&path, password.expose())?;
            lines += &format!("password_file = {}\n", toml_string(&path.display().to_string()));
        }
        if let Some(ca) = &self.ca_file {
            lines += &format!("ca_file = {}\n", toml_string(&ca.display().to_string()));
        }
        Ok(lines)
    }

    /// `mosquitto_sub` options for these credentials and this transport; the password is a
    /// placeholder for the user to fill in.
    pub fn mosquitto_sub_options(&self, url: &str) -> String {
        let mut options = String::new();
        if let Some(user) = &self.username {
            options += &format!(" -u {}", sh_quote(user));
            if self.password.is_some() {
                options += " -P '<password>'";
            }
        }
        if MqttUrl::parse(url).is_ok_and(|u| u.transport == MqttTransport::Tls) {
            match &self.ca_file {
                Some(ca) => options += &format!(" --cafile {}", sh_quote(&ca.display().to_string())),
                None => options += " --capath /etc/ssl/certs",
            }
        }
        options
    }
}

/// Created readable by the owner only, before the secret is written.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(text.as_bytes())
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A word for `sh`: single-quoted unless it is plainly safe.
fn sh_quote(text: &str) -> String {
    let plain = !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:@".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_leave_the_url_and_are_decoded() {
        let (url, access) = split_url("mqtts://bridge%40home:p%40ss:w0rd@127.0.0.1:8883").unwrap();
        assert_eq!(url, "mqtts://127.0.0.1:8883");
        assert_eq!(access.username.as_deref(), Some("bridge@home"));
        assert_eq!(access.password.as_ref().map(Secret::expose), Some("p@ss:w0rd"));
        let (url, access) = split_url("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!(url, "mqtt://127.0.0.1:1883");
        assert!(access.username.is_none() && access.password.is_none());
    }

    #[test]
    fn a_bad_url_is_refused_without_quoting_the_password() {
        for bad in [
            "http://u:Hunter2pw@host",
            "mqtt://u:Hunter2pw@host:99999",
            "mqtt://:Hunter2pw@host",
            "u:Hunter2pw@host",
            "mqtt://u:Hunter2pw@host/path",
        ] {
            let e = split_url(bad).unwrap_err();
            assert!(!e.contains("Hunter2pw"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_printed_subscriber_line_has_a_placeholder() {
        let (url, mut access) = split_url("mqtts://ha:Hunter2pw@127.0.0.1:8883").unwrap();
        let options = access.mosquitto_sub_options(&url);
        assert_eq!(options, " -u ha -P '<password>' --capath /etc/ssl/certs");
        access.ca_file = Some(PathBuf::from("/tmp/my ca.pem"));
        assert!(
            access
                .mosquitto_sub_options(&url)
                .ends_with(" --cafile '/tmp/my ca.pem'")
        );
        assert_eq!(Access::default().mosquitto_sub_options("mqtt://h:1"), "");
        assert_eq!(sh_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn config_lines_point_at_a_private_password_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, access) = split_url("mqtt://h\"a:Hunter2pw@127.0.0.1:1883").unwrap();
        let lines = access.config_lines(dir.path()).unwrap();
        assert!(!lines.contains("Hunter2pw"), "{lines}");
        assert!(
            lines.starts_with("username = 'h\"a'\n") || lines.starts_with("username = \"h\\\"a\"\n"),
            "{lines}"
        );
        let file = dir.path().join("mqtt_password");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "Hunter2pw");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
    }
}
