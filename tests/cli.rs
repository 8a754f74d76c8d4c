//! The command line as a user meets it: help texts, pipes, flag validation, `errors`,
//! hidden files, the database never indexed, escaped names, completions, man pages,
//! `prune` and `forget`, and the progress line on a real pseudo-terminal.

mod common;

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

const ENGINES: [&str; 3] = ["sequential", "threads", "uring"];

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Real files from the shared corpus under the names given (the extension of each name
/// picks the file: mp3, flac, ogg, m4a, opus or aiff).
fn library(dir: &Path, names: &[&[u8]]) -> PathBuf {
    let lib = dir.join("lib");
    for name in names {
        let to = lib.join(OsStr::from_bytes(name));
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let ext = to.extension().unwrap().to_str().unwrap();
        fs::copy(
            corpus().join("files/beets").join(format!("full.{ext}")),
            &to,
        )
        .unwrap();
    }
    lib
}

fn paths_bytes(db: &Path) -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = export(db)
        .into_iter()
        .map(|r| match r["path_bytes"].as_str() {
            Some(hex) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect(),
            None => r["file_path"].as_str().unwrap().as_bytes().to_vec(),
        })
        .collect();
    v.sort();
    v
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

// ---- help ----

/// (item, description) of every argument and option in a `--help` text, in both layouts
/// clap uses (description beside the item, or on the lines below it).
fn help_items(help: &str) -> Vec<(String, String)> {
    let mut items: Vec<(String, String)> = Vec::new();
    let mut in_list = false;
    for line in help.lines() {
        if !line.starts_with(' ') && !line.is_empty() {
            in_list = line.ends_with(':')
                && (line.starts_with("Arguments") || line.starts_with("Options"));
            continue;
        }
        if !in_list || line.trim().is_empty() {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        if indent <= 6 && (t.starts_with('-') || t.starts_with('<') || t.starts_with('[')) {
            let (item, desc) = match t.find("  ") {
                Some(at) => (&t[..at], t[at..].trim()),
                None => (t, ""),
            };
            items.push((item.to_string(), desc.to_string()));
        } else if let Some(last) = items.last_mut()
            && last.1.is_empty()
        {
            last.1 = t.to_string();
        }
    }
    items
}

fn subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_list = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_list = true;
            continue;
        }
        if in_list {
            if !line.starts_with("  ") {
                break;
            }
            out.push(line.split_whitespace().next().unwrap().to_string());
        }
    }
    out
}

#[test]
fn every_option_of_every_subcommand_is_described() {
    let top = ok(&["--help"]);
    assert!(top.contains("Exit status:") && top.contains("130"), "{top}");
    let mut subs = subcommands(&top);
    assert!(subs.len() >= 12, "{subs:?}");
    subs.retain(|s| s != "help");
    // The developer tools live in musicdex-dev, not in the product's help.
    for dev in ["gen-library", "roofline", "synth-index", "gen-robustness"] {
        assert!(!subs.iter().any(|s| s == dev), "{dev} in musicdex --help");
    }
    for sub in &subs {
        for flag in ["--help", "-h"] {
            let help = ok(&[sub, flag]);
            let items = help_items(&help);
            assert!(!items.is_empty(), "{sub}: no items parsed from\n{help}");
            for (item, desc) in &items {
                assert!(
                    !desc.is_empty(),
                    "`musicdex {sub} {flag}`: {item} has no description"
                );
                assert!(
                    !desc.contains("[default: 0]"),
                    "{sub}: {item} shows an untruthful default"
                );
            }
            let user_facing = sub != "synth-index";
            if user_facing && items.iter().any(|(i, _)| i.contains("--db")) && flag == "--help" {
                assert!(
                    help.contains("[env: MUSICDEX_DB"),
                    "{sub}: --db without its env var"
                );
            }
        }
    }
    for (sub, short) in [
        ("index", "-j"),
        ("index", "-e"),
        ("index", "-q"),
        ("index", "-v"),
    ] {
        assert!(
            ok(&[sub, "--help"]).contains(&format!("  {short}, --")),
            "{sub} {short}"
        );
    }
}

// ---- pipes ----

/// Run with a stdout whose reader is already gone.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(bin())
        .args(args)
        .env_remove("MUSICDEX_DB")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_every_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("x.db");
    let lib = repo().join("fixtures/library");
    let mut cases: Vec<Vec<&str>> = vec![
        vec!["index", p(&lib), "--db", p(&db), "--no-progress"],
        vec!["index", p(&lib), "--db", p(&db), "--json"],
        vec!["index", p(&lib), "--db", p(&db), "-v"],
        vec!["stats", "--db", p(&db)],
        vec!["stats", "--db", p(&db), "--json"],
        vec!["errors", "--db", p(&db)],
        vec!["errors", "--db", p(&db), "--json"],
        vec!["export", "--db", p(&db)],
        vec!["export", "--db", p(&db), "--format", "csv"],
        vec!["dupes", "--db", p(&db)],
        vec!["dupes", "--db", p(&db), "--json"],
        vec!["vet", p(&lib), "--db", p(&db)],
        vec!["prune", "--db", p(&db), "--dry-run"],
        vec!["man"],
        vec!["--help"],
    ];
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        cases.push(vec!["completions", shell]);
    }
    for args in &cases {
        let out = with_closed_stdout(args);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "musicdex {args:?}: {} {:?}",
            out.status,
            stderr(&out)
        );
    }
    // The index itself was written in full before the summary found no reader.
    let whole = tmp.path().join("whole.db");
    let s = index_json(&lib, &whole, &[]);
    let stats: Value = serde_json::from_str(&ok(&["stats", "--db", p(&db), "--json"])).unwrap();
    assert_eq!(n(&stats, "files"), n(&s, "files_found"));
}

// ---- flags ----

#[test]
fn ext_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = repo().join("fixtures/library");
    let db = tmp.path().join("x.db");
    let all = index_json(&lib, &db, &[]);
    let found = n(&all, "files_found");
    let wavs = export(&db)
        .iter()
        .filter(|r| r["file_format"] == "wav")
        .count() as u64;
    assert!(wavs > 0);
    for (i, form) in [
        ["--ext", "-wav"],
        ["-e", "-wav"],
        ["--ext", "+dsf,-wav"],
        ["--ext=-wav", ""],
    ]
    .iter()
    .enumerate()
    {
        let db = tmp.path().join(format!("f{i}.db"));
        let extra: Vec<&str> = form.iter().copied().filter(|s| !s.is_empty()).collect();
        let s = index_json(&lib, &db, &extra);
        assert_eq!(n(&s, "files_found"), found - wavs, "{form:?}");
    }
    let db2 = tmp.path().join("mp3.db");
    let s = index_json(&lib, &db2, &["-e", ".MP3"]);
    assert!(export(&db2).iter().all(|r| r["file_format"] == "mp3"));
    assert!(n(&s, "files_found") > 0);
    for bad in [
        "mp3;flac",
        "mp3 flac",
        "*,mp3",
        "mp3,*",
        "",
        ",",
        "toolongext",
        "m/p3",
        "-",
        "+",
    ] {
        let out = musicdex(&["index", p(&lib), "--db", p(&db), "--ext", bad]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "--ext {bad:?}: {err}");
        assert_eq!(err.lines().count(), 1, "--ext {bad:?}: {err}");
        assert!(err.contains("--ext"), "{err}");
    }
    // Refused before anything was touched.
    assert_eq!(export(&db).len() as u64, found);
    // A well-formed list that matches nothing is a warning, not silence.
    let out = musicdex(&[
        "index",
        p(&lib),
        "--db",
        p(&tmp.path().join("g.db")),
        "-e",
        "garbage",
    ]);
    assert!(
        stderr(&out).contains("no file matched --ext 'garbage'"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn numeric_options_are_range_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("x.db");
    let lib = repo().join("fixtures/library");
    index_json(&lib, &db, &[]);
    let d = p(&db);
    for (args, ok_) in [
        (vec!["dupes", "--db", d, "--min-score", "5"], false),
        (vec!["dupes", "--db", d, "--min-score", "-1"], false),
        (vec!["dupes", "--db", d, "--min-score", "nan"], false),
        (vec!["dupes", "--db", d, "--min-score", "inf"], false),
        (vec!["dupes", "--db", d, "-s", "1"], true),
        (vec!["dupes", "--db", d, "--min-score", "0"], true),
        (
            vec!["vet", p(&lib), "--db", d, "--threshold", "1.01"],
            false,
        ),
        (vec!["vet", p(&lib), "--db", d, "-t", "0.5"], true),
        (vec!["index", p(&lib), "--db", d, "-j", "0"], false),
        (
            vec!["index", p(&lib), "--db", d, "--threads", "1025"],
            false,
        ),
        (vec!["index", p(&lib), "--db", d, "-j", "1024", "-q"], true),
        (vec!["prune", "--db", d, "--older-than", "-3"], false),
        (vec!["prune", "--db", d, "--older-than", "99999"], false),
    ] {
        let out = musicdex(&args);
        if ok_ {
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        } else {
            assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        }
    }
    let g = tmp.path().join("g");
    let out = std::process::Command::new(dev_bin())
        .args(["gen-library", p(&g), "--files", "1", "-j", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

// ---- errors ----

#[test]
fn errors_lists_failed_reads_with_exact_names() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = library(tmp.path(), &[b"a/good.mp3", b"a/good2.flac"]);
    // Seeded garbage under names that are not UTF-8 or hold control characters.
    let mut rng = fastrand::Rng::with_seed(14);
    let bad: Vec<&[u8]> = vec![
        b"bad \xff\xfe.mp3",
        b"b\x1b[31mred.flac",
        b"line\nbreak.ogg",
        b"plain.m4a",
    ];
    let mut expected: Vec<Vec<u8>> = Vec::new();
    for name in &bad {
        let path = lib.join(OsStr::from_bytes(name));
        let len = rng.usize(10..5000);
        fs::write(&path, (0..len).map(|_| rng.u8(..)).collect::<Vec<u8>>()).unwrap();
        expected.push(path.as_os_str().as_bytes().to_vec());
    }
    expected.sort();
    let db = tmp.path().join("x.db");
    let s = index_json(&lib, &db, &[]);
    assert_eq!(n(&s, "errors"), bad.len() as u64, "{s}");

    let json: Value = serde_json::from_str(&ok(&["errors", "--db", p(&db), "--json"])).unwrap();
    let files = json["files"].as_array().unwrap();
    let mut got: Vec<Vec<u8>> = files
        .iter()
        .map(|f| match f["path_bytes"].as_str() {
            Some(hex) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect(),
            None => f["path"].as_str().unwrap().as_bytes().to_vec(),
        })
        .collect();
    got.sort();
    assert_eq!(got, expected);
    assert!(
        files
            .iter()
            .all(|f| !f["error"].as_str().unwrap().is_empty())
    );

    let text = ok(&["errors", "--db", p(&db)]);
    assert_eq!(text.lines().count(), bad.len(), "{text}");
    assert!(text.contains("line\\nbreak.ogg: "), "{text}");
    assert!(text.contains("b\\u{1b}[31mred.flac: "), "{text}");
    assert!(!text.contains('\u{1b}'), "{text:?}");

    // stats says what its numbers are.
    let st = ok(&["stats", "--db", p(&db)]);
    assert!(st.starts_with("6 active files (4 with read errors"), "{st}");
    assert!(st.contains("0 inactive rows"), "{st}");
}

// ---- hidden files, the database ----

#[test]
fn hidden_and_appledouble_files_are_skipped_unless_asked() {
    let names: &[&[u8]] = &[
        b"A/one.mp3",
        b"A/.hidden.flac",
        b"A/._one.mp3",
        b".cache/inner.ogg",
        b"A/.sub/deep.m4a",
        b"B/two.opus",
    ];
    for engine in ENGINES {
        let tmp = tempfile::tempdir().unwrap();
        let lib = library(tmp.path(), names);
        // AppleDouble files are resource forks, not audio: make this one realistic.
        fs::write(
            lib.join("A/._one.mp3"),
            b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ",
        )
        .unwrap();
        let db = tmp.path().join("x.db");
        index_json(&lib, &db, &["--engine", engine]);
        let got: Vec<String> = paths_bytes(&db)
            .into_iter()
            .map(|b| String::from_utf8(b).unwrap())
            .map(|s| {
                s.strip_prefix(&format!("{}/", p(&lib)))
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(got, ["A/one.mp3", "B/two.opus"], "{engine}");
        let db2 = tmp.path().join("y.db");
        let s = index_json(&lib, &db2, &["--engine", engine, "--hidden"]);
        assert_eq!(n(&s, "files_found"), 6, "{engine}");
        // A hidden folder given as the root is walked: it was asked for by name.
        let db3 = tmp.path().join("z.db");
        let s = index_json(&lib.join(".cache"), &db3, &["--engine", engine]);
        assert_eq!(n(&s, "files_found"), 1, "{engine}");
    }
}

#[test]
fn the_database_is_never_indexed() {
    for engine in ENGINES {
        for relative in [false, true] {
            // A fresh library each time: another database in it would be fair game.
            let tmp = tempfile::tempdir().unwrap();
            let lib = library(tmp.path(), &[b"one.mp3", b"two.flac"]);
            let (db, cwd) = if relative {
                // Relative, resolved from another folder, through a symlinked parent.
                (PathBuf::from("here/rel.db"), Some(tmp.path().to_path_buf()))
            } else {
                (lib.join("index.db"), None)
            };
            if cwd.is_some() {
                std::os::unix::fs::symlink(&lib, tmp.path().join("here")).unwrap();
            }
            for _ in 0..2 {
                let out = Command::new(bin())
                    .args(["index", p(&lib), "--db", p(&db), "--ext", "*", "--json"])
                    .args(["--engine", engine])
                    .current_dir(cwd.clone().unwrap_or_else(|| tmp.path().to_path_buf()))
                    .env_remove("MUSICDEX_DB")
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", stderr(&out));
            }
            let db_abs = cwd.map_or(db.clone(), |c| c.join(&db));
            let rows = export(&db_abs);
            let names: Vec<&str> = rows
                .iter()
                .map(|r| r["filename"].as_str().unwrap())
                .collect();
            // Only the music, whichever database files existed during the walk.
            assert_eq!(rows.len(), 2, "{engine}: {names:?}");
            assert!(names.iter().all(|n| !n.contains(".db")), "{names:?}");
        }
    }
}

// ---- escaping ----

#[test]
fn control_characters_in_names_are_escaped_in_text_output() {
    let tmp = tempfile::tempdir().unwrap();
    // The same file twice: one content-duplicate group whose names need escaping.
    let lib = library(tmp.path(), &[b"x/new\nline.mp3", b"y/tab\there\x07.mp3"]);
    let db = tmp.path().join("x.db");
    index_json(&lib, &db, &[]);
    let text = ok(&["dupes", "--db", p(&db), "--by", "content"]);
    assert!(text.contains("x/new\\nline.mp3"), "{text}");
    assert!(text.contains("y/tab\\there\\u{7}.mp3"), "{text}");
    assert!(!text.contains('\t') && !text.contains('\u{7}'), "{text:?}");
    assert!(!text.lines().any(|l| l.starts_with("line.mp3")), "{text}");
    // JSON keeps the names exact.
    let json: Value = serde_json::from_str(&ok(&["dupes", "--db", p(&db), "--json"])).unwrap();
    assert!(json.to_string().contains("new\\nline.mp3"), "{json}");
}

/// A JSON path field as bytes: `<field>_bytes`/`path_bytes` hex when the name is not
/// UTF-8, else the text field itself.
fn exact(obj: &Value, text: &str, hex: &str) -> Vec<u8> {
    match obj[hex].as_str() {
        Some(h) => (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect(),
        None => obj[text].as_str().unwrap().as_bytes().to_vec(),
    }
}

#[test]
fn names_that_are_not_utf8_keep_their_bytes_in_json_and_vet_exports() {
    let tmp = tempfile::tempdir().unwrap();
    // Seeded names: Latin-1 bytes, lone continuation bytes, a valid UTF-8 name, and a
    // name that is both invalid and holds a tab; each copy of one recording.
    let mut rng = fastrand::Rng::with_seed(1414);
    let mut names: Vec<Vec<u8>> = vec![
        b"caf\xe9/\xc9t\xe9.mp3".to_vec(),
        b"x/\x80\xff\xfe.mp3".to_vec(),
        "ok/été.mp3".as_bytes().to_vec(),
        b"t/a\tb\xe9.mp3".to_vec(),
    ];
    for i in 0..3 {
        let mut n: Vec<u8> = format!("r{i}/").into_bytes();
        n.extend(
            (0..rng.usize(1..12))
                .map(|_| rng.u8(0x21..=0xff))
                .filter(|&c| c != b'/'),
        );
        n.extend(b".mp3");
        names.push(n);
    }
    let refs: Vec<&[u8]> = names.iter().map(|n| n.as_slice()).collect();
    let lib = library(tmp.path(), &refs);
    let db = tmp.path().join("x.db");
    index_json(&lib, &db, &[]);
    let mut expected: Vec<Vec<u8>> = refs
        .iter()
        .map(|n| {
            lib.join(OsStr::from_bytes(n))
                .as_os_str()
                .as_bytes()
                .to_vec()
        })
        .collect();
    expected.sort();
    assert_eq!(paths_bytes(&db), expected);

    // dupes --json: one content group of every copy, each name exact.
    let json: Value =
        serde_json::from_str(&ok(&["dupes", "--db", p(&db), "--by", "content", "--json"])).unwrap();
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{json}");
    let mut got: Vec<Vec<u8>> = groups[0]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| exact(f, "path", "path_bytes"))
        .collect();
    got.sort();
    assert_eq!(got, expected);
    for f in groups[0]["files"].as_array().unwrap() {
        let utf8 = std::str::from_utf8(&exact(f, "path", "path_bytes")).is_ok();
        assert_eq!(f["path_bytes"].is_null(), utf8, "{f}");
    }

    // vet: a folder holding one more copy under a name that is not UTF-8.
    let new = tmp.path().join(OsStr::from_bytes(b"new \xe9"));
    fs::create_dir_all(&new).unwrap();
    let incoming = new.join(OsStr::from_bytes(b"dup \xff\x01.mp3"));
    fs::copy(lib.join(OsStr::from_bytes(&names[0])), &incoming).unwrap();
    let exports = tmp.path().join("exports");
    let moved = tmp.path().join("moved");
    // The folder's own name is not UTF-8 either: passed as raw bytes.
    let out = Command::new(bin())
        .arg("vet")
        .arg(&new)
        .args(["--db", p(&db), "--json", "--export", p(&exports)])
        .args(["--move-duplicates-to", p(&moved)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let file = &json["files"][0];
    assert_eq!(file["verdict"], "duplicate", "{json}");
    assert_eq!(
        exact(file, "path", "path_bytes"),
        incoming.as_os_str().as_bytes()
    );
    assert!(
        expected.contains(&exact(&file["match"], "path", "path_bytes")),
        "{json}"
    );
    let mv = &json["moves"][0];
    assert_eq!(mv["status"], "moved", "{json}");
    assert_eq!(
        exact(mv, "from", "from_bytes"),
        incoming.as_os_str().as_bytes()
    );
    let target = moved.join(OsStr::from_bytes(b"dup \xff\x01.mp3"));
    assert_eq!(exact(mv, "to", "to_bytes"), target.as_os_str().as_bytes());
    assert!(target.exists() && !incoming.exists());

    // duplicates.txt: the exact bytes, only the control byte escaped.
    let listing = fs::read(exports.join("duplicates.txt")).unwrap();
    let line = listing
        .split(|&b| b == b'\n')
        .find(|l| !l.starts_with(b"#"))
        .unwrap();
    let cols: Vec<&[u8]> = line.split(|&b| b == b'\t').collect();
    let mut want = new.as_os_str().as_bytes().to_vec();
    want.extend(b"/dup \xff\\u{1}.mp3");
    assert_eq!(cols[0], &want[..], "{}", String::from_utf8_lossy(line));
    assert!(
        expected.iter().any(|e| e.as_slice() == cols[3]),
        "{}",
        String::from_utf8_lossy(line)
    );
    let mut header = b"# folder: ".to_vec();
    header.extend(new.as_os_str().as_bytes());
    assert!(
        listing
            .split(|&b| b == b'\n')
            .any(|l| l == header.as_slice())
    );
}

// ---- completions, man ----

#[test]
fn completions_for_every_shell_and_man_pages() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let s = ok(&["completions", shell]);
        for word in ["musicdex", "prune", "forget", "max-removed", "hidden"] {
            assert!(s.contains(word), "{shell} completion lacks {word}");
        }
    }
    let bash = ok(&["completions", "bash"]);
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("c.bash");
    fs::write(&f, &bash).unwrap();
    let st = Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
    let st = Command::new("bash")
        .arg("-c")
        .arg(format!("source {} && complete -p musicdex", p(&f)))
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&st.stdout).contains("musicdex"));

    let man = ok(&["man"]);
    assert!(man.contains(".TH musicdex"), "{man}");
    assert!(
        man.contains("prune") && man.contains("completions"),
        "{man}"
    );
    let dir = tmp.path().join("man");
    ok(&["man", "--out", p(&dir)]);
    for page in [
        "musicdex.1",
        "musicdex-index.1",
        "musicdex-prune.1",
        "musicdex-forget.1",
    ] {
        let t = fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(t.contains(".TH"), "{page}");
        if page != "musicdex.1" {
            assert!(t.contains("MUSICDEX_DB"), "{page}");
        }
    }
}

// ---- prune, forget ----

fn integrity_ok(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let r: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(r, "ok");
}

fn rows_by_state(db: &Path) -> (Vec<String>, Vec<String>) {
    let (mut active, mut inactive) = (Vec::new(), Vec::new());
    for r in export(db) {
        let path = r["file_path"].as_str().unwrap().to_string();
        if r["is_active"] == 1 {
            active.push(path);
        } else {
            inactive.push(path);
        }
    }
    active.sort();
    inactive.sort();
    (active, inactive)
}

#[test]
fn prune_and_forget_remove_only_what_was_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = fastrand::Rng::with_seed(1414);
    let names: Vec<Vec<u8>> = (0..24)
        .map(|i| format!("{}/s{i:02}.mp3", ["A", "B", "B2"][i % 3]).into_bytes())
        .collect();
    let refs: Vec<&[u8]> = names.iter().map(|v| v.as_slice()).collect();
    let lib = library(tmp.path(), &refs);
    let db = tmp.path().join("x.db");
    let roots: Vec<PathBuf> = ["A", "B", "B2"].iter().map(|r| lib.join(r)).collect();
    let mut args = vec!["index", "--db", p(&db), "--json"];
    args.extend(roots.iter().map(|r| p(r)));
    ok(&args);
    // Delete a seeded third of the files; the next run marks them inactive.
    let (all, _) = rows_by_state(&db);
    let gone: Vec<String> = all.iter().filter(|_| rng.u8(..3) == 0).cloned().collect();
    assert!(!gone.is_empty());
    for g in &gone {
        fs::remove_file(g).unwrap();
    }
    args.extend(["--max-removed", "100%"]);
    ok(&args);
    let (active, inactive) = rows_by_state(&db);
    assert_eq!(inactive, gone);

    // Rows seen today are not older than a day.
    let out = ok(&["prune", "--db", p(&db), "--older-than", "1", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap()["rows"], 0);
    // Only B's inactive rows, not B2's (a sibling sharing the prefix).
    let dry = ok(&["prune", p(&roots[1]), "--db", p(&db), "--dry-run", "--json"]);
    let in_b: Vec<&String> = gone.iter().filter(|g| g.contains("/B/")).collect();
    assert_eq!(
        serde_json::from_str::<Value>(&dry).unwrap()["rows"],
        in_b.len()
    );
    assert_eq!(rows_by_state(&db).1, gone, "dry run deleted");
    ok(&["prune", p(&roots[1]), "--db", p(&db)]);
    let (a2, i2) = rows_by_state(&db);
    assert_eq!(a2, active);
    let left: Vec<String> = gone
        .iter()
        .filter(|g| !g.contains("/B/"))
        .cloned()
        .collect();
    assert_eq!(i2, left);
    integrity_ok(&db);
    ok(&["prune", "--db", p(&db), "-q"]);
    assert_eq!(rows_by_state(&db), (active.clone(), vec![]));

    // forget needs --yes; a sibling with a longer name is kept.
    let out = musicdex(&["forget", p(&roots[1]), "--db", p(&db)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));
    assert_eq!(rows_by_state(&db).0, active);
    fs::remove_dir_all(&roots[1]).unwrap();
    ok(&["forget", p(&roots[1]), "--db", p(&db), "--yes"]);
    let kept: Vec<String> = active
        .iter()
        .filter(|a| !a.contains("/B/"))
        .cloned()
        .collect();
    assert_eq!(rows_by_state(&db).0, kept);
    integrity_ok(&db);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let roots_left: i64 = conn
        .query_row("SELECT count(*) FROM library_roots", [], |r| r.get(0))
        .unwrap();
    assert_eq!(roots_left, 2);
    // Nothing left to forget is an error, not silence.
    assert_eq!(
        musicdex(&["forget", p(&roots[1]), "--db", p(&db), "--yes"])
            .status
            .code(),
        Some(1)
    );
}

// ---- progress on a terminal ----

/// A pseudo-terminal pair: (master, slave), the slave sized 120x40.
fn openpty() -> (OwnedFd, OwnedFd) {
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0);
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let name = libc::ptsname(m);
        assert!(!name.is_null());
        let s = libc::open(name, libc::O_RDWR | libc::O_NOCTTY);
        assert!(s >= 0);
        let ws = libc::winsize {
            ws_row: 40,
            ws_col: 120,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        libc::ioctl(s, libc::TIOCSWINSZ, &ws);
        (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s))
    }
}

/// Run `index` with stderr on a terminal; `stop_after` sends Ctrl-C's signal that long
/// after the progress line first shows. Returns (exit code, what the terminal got).
fn index_on_terminal(
    lib: &Path,
    db: &Path,
    extra: &[&str],
    stop_after: Option<std::time::Duration>,
) -> (i32, String) {
    let (master, slave) = openpty();
    let mut child = Command::new(bin())
        .args([
            "index",
            p(lib),
            "--db",
            p(db),
            "--engine",
            "threads",
            "-j",
            "1",
        ])
        .args(extra)
        .env_remove("MUSICDEX_DB")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let reader = std::thread::spawn(move || {
        let mut f = fs::File::from(master);
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // EIO once the last slave descriptor is closed: the child has exited.
        while let Ok(k) = f.read(&mut buf) {
            if k == 0 {
                break;
            }
            all.extend_from_slice(&buf[..k]);
        }
        all
    });
    if let Some(after) = stop_after {
        std::thread::sleep(after);
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    let code = child.wait().unwrap().code().unwrap_or(-1);
    let term = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    (code, term + &stdout)
}

#[test]
fn progress_line_on_a_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("lib");
    dev_ok(&[
        "gen-library",
        p(&lib),
        "--files",
        "400",
        "--mix",
        "small",
        "--seed",
        "14",
    ]);
    let db = tmp.path().join("x.db");
    let (code, term) = index_on_terminal(&lib, &db, &[], None);
    assert_eq!(code, 0, "{term}");
    for part in [
        " found · ",
        " read · ",
        " saved · ",
        " files/s · ",
        " MiB/s",
    ] {
        assert!(term.contains(part), "progress lacks {part:?}: {term:?}");
    }
    // The line is erased (carriage return, erase line) before anything else is printed.
    let last_progress = term.rfind(" files/s · ").unwrap();
    let cleared = term[last_progress..]
        .find("\r\x1b[2K")
        .expect("line cleared")
        + last_progress;
    assert!(term[cleared..].contains("files found:"), "{term:?}");
    assert!(!term[cleared + 5..].contains(" files/s · "), "{term:?}");
    // Read again: the index knows how many files there are, so an estimate of the time
    // left shows from the start, marked `~` until the walk has listed them all.
    let (code, term) = index_on_terminal(&lib, &db, &["--full"], None);
    assert_eq!(code, 0, "{term}");
    assert!(term.contains(" · ETA ~"), "{term:?}");
    let eta = term.find(" · ETA ~").unwrap();
    let left = &term[eta + " · ETA ~".len()..];
    let num = left
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap();
    assert!(
        num.ends_with('s') && num[..num.len() - 1].chars().any(|c| c.is_ascii_digit()),
        "{num:?}"
    );

    // Ctrl-C: the line goes before the "interrupted" message, which stands alone.
    let db2 = tmp.path().join("y.db");
    let (code, term) =
        index_on_terminal(&lib, &db2, &[], Some(std::time::Duration::from_millis(500)));
    assert_eq!(code, 130, "{term:?}");
    let msg = term
        .find("musicdex: interrupted")
        .expect("interrupted message");
    let before = &term[..msg];
    let last_progress = before
        .rfind(" found · ")
        .expect("progress shown before the stop");
    assert!(before[last_progress..].contains("\r\x1b[2K"), "{term:?}");
}

#[test]
fn a_missing_folder_is_named_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("x.db");
    index_json(&repo().join("fixtures/library"), &db, &[]);
    let gone = tmp.path().join("gone");
    for args in [
        vec!["vet", p(&gone), "--db", p(&db)],
        vec!["index", p(&gone), "--db", p(&db)],
    ] {
        let out = musicdex(&args);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr(&out),
            format!(
                "musicdex: cannot read {}: no such file or folder\n",
                p(&gone)
            )
        );
    }
}

#[test]
fn permission_denied_is_said_with_the_path_once() {
    let tmp = tempfile::tempdir().unwrap();
    open_to_all(tmp.path());
    let dir = tmp.path().join("d");
    fs::create_dir(&dir).unwrap();
    let db = dir.join("x.db");
    index_json(&repo().join("fixtures/library"), &db, &[]);
    let run = |args: &[&str]| {
        let out = musicdex_unprivileged()
            .args(args)
            .env_remove("MUSICDEX_DB")
            .output()
            .unwrap();
        (out.status.code(), stderr(&out))
    };
    let lib = repo().join("fixtures/library");
    chmod(&dir, 0o755);
    chmod(&db, 0o600);
    for sub in ["stats", "export", "dupes", "errors"] {
        let (code, err) = run(&[sub, "--db", p(&db)]);
        assert_eq!(code, Some(1), "{sub}");
        assert_eq!(
            err,
            format!(
                "musicdex: cannot open database {}: permission denied (reading it)\n",
                p(&db)
            )
        );
    }
    // Readable, in a folder that is not writable: queries work, index says why it cannot.
    chmod(&db, 0o644);
    let (code, _) = run(&["stats", "--db", p(&db)]);
    assert_eq!(code, Some(0));
    let (code, err) = run(&["index", p(&lib), "--db", p(&db)]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("permission denied") && err.matches(p(&db)).count() == 1,
        "{err}"
    );
    let (code, err) = run(&["index", p(&lib), "--db", p(&dir.join("new/y.db"))]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains(&format!("folder {} is not writable", p(&dir))),
        "{err}"
    );
    chmod(&dir, 0o777);
}
