//! Scale generator that recombines the corpus up to N comments for benchmarks (being written).
