//! R as the oracle: runs base R (Debian's r-base-core, with r-cran-jsonlite) on a script and
//! returns what it printed. A machine without R fails the test with the reason; it never passes.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs `script` with `Rscript --vanilla` and returns its standard output.
pub fn rscript(script: &str) -> String {
    let output = Command::new("Rscript")
        .args(["--vanilla", "-e", script])
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|error| {
            panic!("Rscript could not be run ({error}); R is the oracle of these tests: tests/system-packages.sh test installs r-base-core and r-cran-jsonlite")
        });
    assert!(
        output.status.success(),
        "Rscript failed: {}\n--- script\n{script}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("R printed UTF-8")
}

/// Writes bytes to a fresh file under the test's temporary directory and returns its path, for
/// R to read (`unserialize(readBin(...))`).
pub fn scratch_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("datashield");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write the scratch file");
    path
}
