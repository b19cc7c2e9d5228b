//! Runs the configured vnstat command line: no shell, a hard timeout, bounded output.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use crate::sources::SourceError;

/// vnstat's largest realistic output (full dump of many interfaces) is a few MB.
const STDOUT_LIMIT: u64 = 16 * 1024 * 1024;
const STDERR_LIMIT: u64 = 64 * 1024;

pub struct CommandOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` and collects its output. Only the program name appears in errors: arguments may
/// carry things users would rather not see in logs.
pub async fn run(argv: &[String], timeout: Duration) -> Result<CommandOutput, SourceError> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| SourceError::Unavailable("no command configured".into()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                SourceError::Unavailable(format!("command `{program}` not found (is it installed and on PATH?)"))
            }
            _ => SourceError::Unavailable(format!("cannot run `{program}`: {e}")),
        })?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let collect = async {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let read_out = async {
            if let Some(s) = stdout {
                s.take(STDOUT_LIMIT + 1).read_to_end(&mut out).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let read_err = async {
            if let Some(s) = stderr {
                s.take(STDERR_LIMIT).read_to_end(&mut err).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let (a, b) = tokio::join!(read_out, read_err);
        a.and(b)?;
        if out.len() as u64 > STDOUT_LIMIT {
            return Err(std::io::Error::other(format!(
                "printed more than {} MiB",
                STDOUT_LIMIT >> 20
            )));
        }
        let status = child.wait().await?;
        Ok((status, out, err))
    };
    match tokio::time::timeout(timeout, collect).await {
        Err(_) => Err(SourceError::Unavailable(format!(
            "`{program}` did not finish within {}; killed",
            humantime::format_duration(timeout)
        ))),
        Ok(Err(e)) => Err(SourceError::Unavailable(format!("`{program}` failed: {e}"))),
        Ok(Ok((status, out, err))) => Ok(CommandOutput {
            status,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr: String::from_utf8_lossy(&err).into_owned(),
        }),
    }
}
