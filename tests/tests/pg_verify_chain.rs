//! `fenlei-server verify-chain --database-url` checks the chain in PostgreSQL (the check itself
//! and the PostgreSQL chain are tested in server/src/pg/parity_tests.rs; this is the command).
//! Runs when FENLEI_TEST_DATABASE_URL names a cluster (`scripts/postgres.sh start DIR`).

mod common;

use std::process::Command;

fn server(url: &str, args: &[&str]) -> (bool, String) {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(common::BIN)
        .args([
            "--data",
            data.path().to_str().unwrap(),
            "--database-url",
            url,
        ])
        .args(args)
        .env_remove("FENLEI_DATABASE_URL")
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
#[ignore = "needs PostgreSQL: FENLEI_TEST_DATABASE_URL (scripts/test.sh starts one)"]
fn verify_chain_reads_postgresql_without_changing_it() {
    let base = common::required_cluster();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let name = format!("fenlei_chain_cli_{}", std::process::id());
    let made = Command::new("bash")
        .arg(root.join("scripts/postgres.sh"))
        .args(["createdb", &base, &name])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let url = String::from_utf8(made.stdout).unwrap().trim().to_string();

    // A database the server never touched has no chain: refused, and left as it is.
    let (ok, out) = server(&url, &["verify-chain"]);
    assert!(!ok && out.contains("no Fenlei database"), "{out}");
    let (ok, out) = server(&url, &["verify-chain"]);
    assert!(
        !ok && out.contains("no Fenlei database"),
        "nothing was created: {out}"
    );

    let (ok, out) = server(&url, &["init"]);
    assert!(ok, "{out}");
    let (ok, out) = server(&url, &["verify-chain"]);
    assert!(
        ok && out.contains("chain: 0 entries") && out.contains("chain verified"),
        "{out}"
    );
    let (ok, out) = server(&url, &["verify-chain", "--json"]);
    assert!(ok && out.contains("\"entries\": 0"), "{out}");
    // A receipt the chain no longer holds (here: never held) fails the check at its index.
    let (ok, out) = server(&url, &["verify-chain", "--expect", "0:abc"]);
    assert!(!ok && out.contains("entry 0:"), "{out}");
}
