//! The end-to-end harness shared by the tests in `tests/tests/`: the `pqrs` binary ([`pqrs_binary`]), child
//! processes killed when the test ends ([`process`]), `pqrs serve` on an ephemeral port ([`server`]), a tiny
//! HTTP/1.1 client over `std::net::TcpStream` ([`http`]), waiting for effects that have no answer to wait on
//! ([`eventually`]) and reading Prometheus counters ([`counter`]).

pub mod binary;
pub mod http;
pub mod process;
pub mod server;

use std::time::{Duration, Instant};

pub use binary::{IfMissing, pqrs_binary};
pub use http::{Connection, Response};
pub use process::{Group, Process, Ready, start_and_read};
pub use server::{Server, serve_command};

/// Checks `condition` every 20 ms until it holds (true) or `limit` passes (false); for effects of signals and of
/// work done off the request path, which have no answer to wait on.
pub fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The value of the unlabelled counter `name` in Prometheus text (`/metrics`), if it is there.
pub fn counter(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|value| value as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_reads_the_named_unlabelled_line_only() {
        let metrics = "# TYPE pqrs_a_total counter\npqrs_a_total_more 7\npqrs_a_total 42\n\
                       pqrs_b_total{head=\"type\"} 3\n";
        assert_eq!(counter(metrics, "pqrs_a_total"), Some(42));
        assert_eq!(counter(metrics, "pqrs_b_total"), None);
        assert_eq!(counter(metrics, "pqrs_c_total"), None);
    }

    #[test]
    fn eventually_reports_whether_the_condition_came_true() {
        let mut calls = 0;
        assert!(eventually(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert!(!eventually(Duration::from_millis(50), || false));
    }
}
