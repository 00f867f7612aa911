//! `pqrs serve` on an ephemeral port, as the end-to-end tests start it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use crate::http::Connection;
use crate::process::{Group, Process, Ready, start_and_read};

/// The command `pqrs serve --addr 127.0.0.1:0 --api-key KEY` with the default model cached in `cache` and none of
/// the user's `PQRS_MODEL`, `PQRS_ADDR` or `PQRS_DB`; add the test's own flags and environment before
/// [`Server::start`] (without `--db` or `PQRS_DB` the prediction log would go to the user's data directory).
pub fn serve_command(binary: &Path, cache: &Path, key: &str) -> Command {
    let mut command = Command::new(binary);
    command
        .args(["serve", "--addr", "127.0.0.1:0", "--api-key", key])
        .env("PQRS_CACHE_DIR", cache)
        .env_remove("PQRS_MODEL")
        .env_remove("PQRS_ADDR")
        .env_remove("PQRS_DB");
    command
}

/// A running `pqrs serve`, killed when dropped (if the test has not stopped it).
#[derive(Debug)]
pub struct Server {
    process: Process,
    addr: SocketAddr,
    log: PathBuf,
}

impl Server {
    /// Starts `command` (a [`serve_command`]) with its logs (stderr) in `log` and waits for the first stdout line,
    /// `listening on ADDR`; the first start trains the default model into the cache, which takes a while.
    pub fn start(command: Command, log: PathBuf) -> Server {
        let (process, addr) = start_and_read(
            command,
            Group::Inherit,
            Ready::FirstLine("listening on "),
            &log,
        );
        let addr = addr
            .parse()
            .unwrap_or_else(|e| panic!("`listening on {addr}` is not an address: {e}"));
        Server { process, addr, log }
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new keep-alive connection; fails the test when the server refuses it.
    pub fn connect(&self) -> Connection {
        Connection::open(self.addr).expect("the server accepts connections")
    }

    /// What the server has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends the signal `name` (`TERM`, `HUP`, ...); fails the test when `kill` fails.
    pub fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Kills the server at once (SIGKILL, no shutdown) and waits for it.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Whether the server process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.process.has_exited()
    }

    /// Waits for the server to exit and returns its status.
    pub fn wait(&mut self) -> ExitStatus {
        self.process.wait()
    }
}
