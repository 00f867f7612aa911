//! Finding the `pqrs` binary the end-to-end tests run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// What [`pqrs_binary`] does when the binary of the test's profile is not there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfMissing {
    /// Build it with the cargo that built the test (`cargo build -p service --bin pqrs`, same profile).
    Build,
    /// Fail the test, telling how to build it (for tests run by a script that builds it first).
    Fail,
}

/// The `pqrs` binary: `PQRS_BIN` when set, else `target/<profile>/pqrs` of the profile the running test was built
/// with (`cargo test --workspace` builds it for the service crate's own tests).
///
/// An existing binary is not rebuilt from here: after changing the service, build it first
/// (`cargo build -p service --bin pqrs`).
pub fn pqrs_binary(if_missing: IfMissing) -> PathBuf {
    if let Some(path) = std::env::var_os("PQRS_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test knows its own path");
    // target/<profile>/deps/<test>-<hash> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test runs from target/<profile>/deps");
    let binary = profile_dir.join(format!("pqrs{}", std::env::consts::EXE_SUFFIX));
    if binary.exists() {
        return binary;
    }
    match if_missing {
        IfMissing::Fail => panic!(
            "{} is missing: build it first (cargo build -p service --bin pqrs) or run tests/browser/run.sh",
            binary.display()
        ),
        IfMissing::Build => {
            let target_dir = profile_dir.parent().expect("target/<profile> has a parent");
            let mut build = Command::new(env!("CARGO"));
            build
                .args(["build", "-p", "service", "--bin", "pqrs"])
                .env("CARGO_TARGET_DIR", target_dir);
            if profile_dir.ends_with("release") {
                build.arg("--release");
            }
            let status = build.status().expect("cargo runs");
            assert!(status.success(), "building pqrs failed");
            binary
        }
    }
}
