//! Noise augmenter for benchmarks and robustness checks (being written).
