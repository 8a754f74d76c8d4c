//! Shared helpers for the integration tests: run the real binary against a real SQLite
//! file in a temporary folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_musicdex"))
}

/// The developer tools (generators, roofline), kept out of the product binary.
pub fn dev_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_musicdex-dev"))
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared corpus: under `MUSICDEX_SHARED` (set by ci/test), else beside the checkout.
pub fn corpus() -> PathBuf {
    std::env::var_os("MUSICDEX_SHARED")
        .map_or_else(|| repo().join("../shared"), PathBuf::from)
        .join("corpus")
}

/// Run the developer binary (generators) and insist on success, returning stdout.
pub fn dev_ok(args: &[&str]) -> String {
    let out = Command::new(dev_bin())
        .args(args)
        .output()
        .expect("run musicdex-dev");
    succeeded("musicdex-dev", args, out)
}

pub fn musicdex(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("MUSICDEX_DB")
        .output()
        .expect("run musicdex")
}

/// Run and insist on success, returning stdout.
pub fn ok(args: &[&str]) -> String {
    succeeded("musicdex", args, musicdex(args))
}

fn succeeded(program: &str, args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

pub fn index_json(lib: &Path, db: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "index",
        lib.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = ok(&args);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("bad JSON {out:?}: {e}"))
}

pub fn export(db: &Path) -> Vec<serde_json::Value> {
    ok(&["export", "--db", db.to_str().unwrap()])
        .lines()
        .map(|l| serde_json::from_str(l).expect("jsonl row"))
        .collect()
}

pub fn copy_tree(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn n(v: &serde_json::Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} missing in {v}"))
}

/// A copy of the binary that uid nobody can execute: the build's own folder may sit in a
/// directory only root can enter (a CI checkout under a private temporary folder).
pub fn bin_for_nobody() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    static COPY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    COPY.get_or_init(|| {
        // One folder per build, replaced atomically: test binaries run in parallel, and
        // a copy per process would pile up in /tmp. Keyed by the build's path, so two
        // checkouts tested at once never run each other's binary.
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        bin().hash(&mut h);
        let dir = std::env::temp_dir().join(format!("musicdex-test-bin-{:016x}", h.finish()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let staged = dir.join(format!(".musicdex-{}", std::process::id()));
        std::fs::copy(bin(), &staged).unwrap();
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("musicdex");
        std::fs::rename(&staged, &copy).unwrap();
        copy
    })
    .clone()
}

pub fn chmod(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Open a test tree to every user (folders 777, files 666), so a run as nobody meets only
/// the permissions a test takes away on purpose.
pub fn open_to_all(dir: &Path) {
    chmod(dir, 0o777);
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() && !p.is_symlink() {
            open_to_all(&p);
        } else if !p.is_symlink() {
            chmod(&p, 0o666);
        }
    }
}

/// `musicdex` as uid nobody when we are root (root ignores permission bits), else as we
/// are. The caller adds the arguments.
pub fn musicdex_unprivileged() -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin_for_nobody());
        c
    } else {
        Command::new(bin())
    }
}

/// A nonzero salt from a path (FNV-1a of its bytes), for tests that must make each
/// generated song's audio distinct: two paths collide once in 2^32.
pub fn path_salt(path: &Path) -> u32 {
    path.as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0x811c_9dc5u32, |h, &b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        })
        | 1
}
