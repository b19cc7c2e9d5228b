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
        // Its own process group: whatever it starts (a daemonising wrapper, an ssh
        // ControlMaster, a stray `&`) can be ended with it, and never outlives the poll.
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                SourceError::Unavailable(format!("command `{program}` not found (is it installed and on PATH?)"))
            }
            _ => SourceError::Unavailable(format!("cannot run `{program}`: {e}")),
        })?;
    let group = ProcessGroup(child.id());
    // The readers run on their own: a descendant that keeps the pipe open must not keep us
    // waiting for an end of file that never comes.
    let out = Captured::start(child.stdout.take(), STDOUT_LIMIT + 1);
    let err = Captured::start(child.stderr.take(), STDERR_LIMIT);
    let waited = tokio::time::timeout(timeout, child.wait()).await;
    // Done or not: nothing of the command outlives the poll. What the main process wrote is
    // in the pipe already; killing the other holders of the write end ends the readers.
    group.kill();
    let (out, err) = (out.finish().await, err.finish().await);
    let status = match waited {
        Err(_) => {
            let _ = child.wait().await;
            return Err(SourceError::Unavailable(format!(
                "`{program}` did not finish within {}; killed",
                humantime::format_duration(timeout)
            )));
        }
        Ok(Err(e)) => return Err(SourceError::Unavailable(format!("`{program}` failed: {e}"))),
        Ok(Ok(status)) => status,
    };
    if out.len() as u64 > STDOUT_LIMIT {
        return Err(SourceError::Unavailable(format!(
            "`{program}` printed more than {} MiB",
            STDOUT_LIMIT >> 20
        )));
    }
    Ok(CommandOutput {
        status,
        stdout: String::from_utf8_lossy(&out).into_owned(),
        stderr: String::from_utf8_lossy(&err).into_owned(),
    })
}

/// How long the readers may still take once the command's group is killed: only a process
/// that left the group (`setsid`) could hold the pipe longer, and it is not waited for.
const DRAIN: Duration = Duration::from_secs(1);

/// One output stream, read up to a limit by its own task into a shared buffer.
struct Captured {
    buf: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Captured {
    fn start(stream: Option<impl tokio::io::AsyncRead + Unpin + Send + 'static>, limit: u64) -> Self {
        let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = buf.clone();
        let task = tokio::spawn(async move {
            let Some(mut s) = stream.map(|s| s.take(limit)) else {
                return;
            };
            let mut chunk = [0u8; 8192];
            while let Ok(n) = s.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                if let Ok(mut b) = shared.lock() {
                    b.extend_from_slice(&chunk[..n]);
                }
            }
        });
        Self { buf, task }
    }

    async fn finish(mut self) -> Vec<u8> {
        if tokio::time::timeout(DRAIN, &mut self.task).await.is_err() {
            self.task.abort();
        }
        self.buf.lock().map(|mut b| std::mem::take(&mut *b)).unwrap_or_default()
    }
}

struct ProcessGroup(Option<u32>);

impl ProcessGroup {
    fn kill(&self) {
        let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 1) else {
            return;
        };
        // SAFETY: kill(2) with a negative pid signals the process group we created for this
        // command (its leader's pid); it touches no memory of ours.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (bounded) until the process named in `pidfile` is gone, or at most a zombie
    /// waiting for whoever reaps orphans here.
    async fn assert_gone(pidfile: &std::path::Path) {
        let pid = std::fs::read_to_string(pidfile).unwrap();
        let stat_path = format!("/proc/{}/stat", pid.trim());
        let dead = || {
            let stat = std::fs::read_to_string(&stat_path).unwrap_or_default();
            let state = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next());
            stat.is_empty() || state == Some("Z")
        };
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            while !dead() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        assert!(wait.await.is_ok(), "background child {} still alive", pid.trim());
    }

    /// A command whose background child keeps stdout open: the output is read as soon as the
    /// command itself exits, and the child does not outlive the poll.
    #[tokio::test]
    async fn a_child_holding_stdout_neither_fails_the_poll_nor_survives_it() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let script = format!("sleep 60 & echo $! > {}; echo '{{\"ok\":1}}'", pidfile.display());
        let argv = vec!["sh".to_owned(), "-c".to_owned(), script];
        let out = run(&argv, Duration::from_secs(20)).await.expect("the poll succeeds");
        assert!(out.status.success());
        assert_eq!(out.stdout.trim(), "{\"ok\":1}");
        assert_gone(&pidfile).await;
    }

    #[tokio::test]
    async fn a_command_that_hangs_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("bg.pid");
        let script = format!("sleep 60 & echo $! > {}; sleep 60", pidfile.display());
        let argv = vec!["sh".to_owned(), "-c".to_owned(), script];
        let err = run(&argv, Duration::from_millis(500)).await.err().unwrap();
        assert!(err.to_string().contains("did not finish"), "{err}");
        assert_gone(&pidfile).await;
    }
}
