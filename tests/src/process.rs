//! Child processes of a test: started with stdout piped and stderr in a log file, ready when they print a given
//! line, and killed when the test ends, whether it passed or not.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a program may take to print its ready line: the first start of `pqrs serve` trains the default model,
/// seconds in release and longer in a debug build.
const READY_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether a child gets a process group of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// The test's group (an interrupted test run interrupts the child too).
    Inherit,
    /// A group of its own, killed as a whole on drop: for programs that start programs of their own
    /// (chromedriver's Chromium processes must not outlive a failed test).
    Own,
}

/// The stdout line that tells that a started program is ready, and from which the value it announces is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ready<'a> {
    /// The first line must start with this prefix (any other first line fails the test); the value is the rest.
    FirstLine(&'a str),
    /// The first line that contains this text, whatever came before; the value is what follows the text.
    AnyLine(&'a str),
}

impl Ready<'_> {
    fn text(&self) -> &str {
        match self {
            Ready::FirstLine(text) | Ready::AnyLine(text) => text,
        }
    }
}

/// A child process that is killed (with its whole group when it has one of its own) when dropped.
#[derive(Debug)]
pub struct Process {
    child: Child,
    group: Group,
}

impl Process {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...) with `kill`; fails the test when `kill` fails.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Kills the process at once (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        self.child.kill().expect("the process can be killed");
        self.child.wait().expect("the killed process is waited for");
    }

    /// Whether the process has exited (it is reaped if so).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().expect("the process is waited for")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.group == Group::Own {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `command` with stdout piped and stderr written to `log`, waits (up to 10 minutes) for its `ready` line
/// and returns the process and the value the line announces, trimmed of spaces and of a final period.
///
/// Stdout is read until the process ends, so that the program never blocks on a full pipe. The test fails, with
/// the log, when the line does not come.
pub fn start_and_read(
    mut command: Command,
    group: Group,
    ready: Ready<'_>,
    log: &Path,
) -> (Process, String) {
    if group == Group::Own {
        command.process_group(0);
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("the log file is created"))
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let process = Process { child, group };
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // The receiver is gone once the ready line is read; the rest is only drained.
            let _ = sender.send(line);
        }
    });
    let wanted = ready.text();
    let log_text = || std::fs::read_to_string(log).unwrap_or_default();
    let deadline = Instant::now() + READY_TIMEOUT;
    let rest = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = receiver.recv_timeout(left).unwrap_or_else(|e| {
            panic!(
                "{command:?} printed no `{wanted}` line ({e}); log:\n{}",
                log_text()
            )
        });
        match ready {
            Ready::FirstLine(prefix) => match line.strip_prefix(prefix) {
                Some(rest) => break rest.to_string(),
                None => panic!(
                    "{command:?}: unexpected first line {line:?}; log:\n{}",
                    log_text()
                ),
            },
            Ready::AnyLine(text) => {
                if let Some((_, rest)) = line.split_once(text) {
                    break rest.to_string();
                }
            }
        }
    };
    (process, rest.trim().trim_end_matches('.').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Command {
        let mut command = Command::new("sh");
        command.args(["-c", script]);
        command
    }

    #[test]
    fn any_line_skips_other_lines_and_trims_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let (mut process, port) = start_and_read(
            shell("echo starting; echo 'ready on port 4242.'; exec sleep 30"),
            Group::Own,
            Ready::AnyLine("on port "),
            &dir.path().join("log"),
        );
        assert_eq!(port, "4242");
        assert!(!process.has_exited());
        process.signal("TERM");
        assert!(crate::eventually(Duration::from_secs(10), || process.has_exited()));
    }

    #[test]
    #[should_panic(expected = "unexpected first line \"starting\"")]
    fn first_line_refuses_any_other_first_line() {
        let dir = tempfile::tempdir().unwrap();
        start_and_read(
            shell("echo starting; echo 'listening on 127.0.0.1:1'; exec sleep 30"),
            Group::Inherit,
            Ready::FirstLine("listening on "),
            &dir.path().join("log"),
        );
    }

    #[test]
    #[should_panic(expected = "printed no `listening on ` line")]
    fn a_program_that_exits_silently_fails_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        start_and_read(
            shell("echo broken >&2"),
            Group::Inherit,
            Ready::FirstLine("listening on "),
            &dir.path().join("log"),
        );
    }
}
