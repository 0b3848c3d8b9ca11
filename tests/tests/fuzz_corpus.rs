//! Every fuzz seed and every input a fuzzer ever crashed on (fuzz/corpus/<target>/,
//! fuzz/regressions/<target>/) runs through the same harness functions as the fuzz targets
//! (fenlei_e2e::fuzz_harness): no fuzzing here, just the inputs, on every `cargo test`.

use fenlei_e2e::fuzz_harness::TARGETS;
use std::path::Path;

fn inputs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn seed_corpora_and_regressions_pass_through_every_harness() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, harness) in TARGETS {
        let seeds = inputs(&fuzz.join("corpus").join(target));
        assert!(!seeds.is_empty(), "no seed corpus for {target}");
        let regressions = inputs(&fuzz.join("regressions").join(target));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap();
            eprintln!("{target}: {}", path.display());
            harness(&data);
        }
    }
}
