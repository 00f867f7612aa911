//! Benchmark harnesses of pqrs-router: criterion micro-benchmarks (`benches/classifier.rs`), training time
//! (`bin/train_time.rs`), the HTTP load generator, and the side-by-side comparison with the peers (`peers/`,
//! driven by `run.sh`). Nothing here runs in CI's test command.
