//! `export --format parquet`: the index as one host's partition of a hive-partitioned
//! Parquet dataset, `DIR/host=NAME/part-00000.parquet`, which DuckDB, Spark and Trino
//! read across servers (docs/cross-server.md).
//!
//! The Arrow schema is read from the table itself (`PRAGMA table_info`), so a column a
//! later migration adds is exported without a change here.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::BufWriter;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arrow_array::builder::{BinaryBuilder, Float64Builder, Int64Builder, StringBuilder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use rusqlite::Connection;
use rusqlite::types::ValueRef;
use serde::Serialize;

/// ~128k rows per row group: large enough for good compression and few footers to read,
/// small enough that the row group being encoded stays a few tens of MB at most.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;
/// Rows per Arrow batch handed to the writer; only this many decoded rows are ever held.
const BATCH_ROWS: usize = 8192;
pub const PART_FILE: &str = "part-00000.parquet";
/// Partitions are written here first. The leading dot keeps Spark, Hive and Trino from
/// listing it, and it sits one level deeper than `DIR/*/*.parquet` reaches.
pub const STAGING_DIR: &str = ".musicdex-staging";
/// The columns added to the table's own, in this order.
pub const HOST_COLUMN: &str = "host";
pub const ROOT_COLUMN: &str = "root";

#[derive(Debug, Clone)]
pub struct ParquetOptions {
    /// The dataset folder (`DIR`); the partition is `DIR/host=NAME`.
    pub dir: PathBuf,
    pub host: String,
}

#[derive(Debug, Serialize)]
pub struct ParquetSummary {
    pub file: PathBuf,
    pub host: String,
    pub rows: u64,
    pub row_groups: usize,
    pub bytes: u64,
    pub columns: usize,
    pub secs: f64,
}

/// SQLite's storage classes as Arrow types. SQLite is dynamically typed: the declared type
/// only gives an affinity, so each value is checked against it on the way out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Real,
    Text,
    Blob,
}

impl Kind {
    /// The affinity rules of SQLite (datatype3.html §3.1), in their order. NUMERIC
    /// affinity (anything else) is exported as a double.
    pub fn from_declared(decl: &str) -> Kind {
        let d = decl.to_ascii_uppercase();
        if d.contains("INT") {
            Kind::Int
        } else if d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT") {
            Kind::Text
        } else if d.contains("BLOB") || d.trim().is_empty() {
            Kind::Blob
        } else {
            Kind::Real
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Int => DataType::Int64,
            Kind::Real => DataType::Float64,
            Kind::Text => DataType::Utf8,
            Kind::Blob => DataType::Binary,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Column {
    pub name: String,
    pub kind: Kind,
    pub nullable: bool,
}

/// Every column of `library_index`, in table order, typed by its declared type.
pub fn table_columns(conn: &Connection) -> Result<Vec<Column>> {
    let mut stmt =
        conn.prepare("SELECT name, type, \"notnull\", pk FROM pragma_table_info('library_index')")?;
    let cols = stmt
        .query_map([], |r| {
            let name: String = r.get(0)?;
            let decl: String = r.get(1)?;
            let notnull: i64 = r.get(2)?;
            let pk: i64 = r.get(3)?;
            let kind = Kind::from_declared(&decl);
            // An INTEGER PRIMARY KEY is the rowid: never null, whatever `notnull` says.
            let rowid = pk > 0 && decl.eq_ignore_ascii_case("INTEGER");
            Ok(Column {
                name,
                kind,
                nullable: notnull == 0 && !rowid,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if cols.is_empty() {
        bail!("the database has no library_index table");
    }
    for c in &cols {
        if c.name == HOST_COLUMN || c.name == ROOT_COLUMN {
            bail!(
                "library_index has a column named {:?}, which the Parquet export adds itself",
                c.name
            );
        }
    }
    Ok(cols)
}

/// The Arrow schema of the exported file: the table's columns, then `host` and `root`.
pub fn arrow_schema(cols: &[Column]) -> SchemaRef {
    let mut fields: Vec<Field> = cols
        .iter()
        .map(|c| Field::new(&c.name, c.kind.data_type(), c.nullable))
        .collect();
    fields.push(Field::new(HOST_COLUMN, DataType::Utf8, false));
    fields.push(Field::new(ROOT_COLUMN, DataType::Utf8, true));
    let meta = [
        (
            "musicdex:schema_version".to_string(),
            super::schema::SCHEMA_VERSION.to_string(),
        ),
        ("musicdex:exported_at".to_string(), super::now_rfc3339()),
    ];
    Arc::new(Schema::new_with_metadata(
        fields,
        meta.into_iter()
            .collect::<std::collections::BTreeMap<_, _>>(),
    ))
}

/// A host name becomes a folder name and a hive partition value that every engine must
/// read back unchanged, so only the characters of DNS names (and `_`) are accepted:
/// nothing that needs escaping in a path or a partition value.
pub fn check_host(host: &str) -> Result<()> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('.')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !ok {
        bail!(
            "host name {host:?} cannot name a partition: use letters, digits, '.', '-' and '_' \
             only, not starting with '.' (pass --host NAME)"
        );
    }
    Ok(())
}

/// This machine's host name, the default partition name.
pub fn local_hostname() -> Result<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length; gethostname NUL-terminates
    // within it or truncates, and we stop at the first NUL either way.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        bail!(
            "cannot read the host name ({}): pass --host NAME",
            std::io::Error::last_os_error()
        );
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8(buf[..end].to_vec())
        .context("the host name is not UTF-8: pass --host NAME")?;
    check_host(&name)?;
    Ok(name)
}

/// Write the whole index (inactive rows too) as `DIR/host=NAME/part-00000.parquet`,
/// replacing that partition atomically: the file is written and synced in a staging
/// folder, then swapped in with one rename. Readers see the old partition or the new one,
/// never a half-written file, and a failed export leaves the old one as it was.
pub fn export(conn: &Connection, opts: &ParquetOptions) -> Result<ParquetSummary> {
    let started = Instant::now();
    check_host(&opts.host)?;
    let cols = table_columns(conn)?;
    let schema = arrow_schema(&cols);

    fs::create_dir_all(&opts.dir)
        .with_context(|| format!("cannot create {}", opts.dir.display()))?;
    let partition_name = format!("host={}", opts.host);
    let target = opts.dir.join(&partition_name);
    if let Ok(meta) = fs::symlink_metadata(&target)
        && !meta.is_dir()
    {
        bail!(
            "{} exists and is not a folder: not replacing it",
            target.display()
        );
    }
    let staging_root = opts.dir.join(STAGING_DIR);
    remove_stale_staging(&staging_root, &partition_name);
    let staging = staging_root.join(format!("{partition_name}.{}", std::process::id()));
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove stale {}", staging.display()))?;
    }
    fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;

    let written =
        write_file(conn, &cols, schema, &opts.host, &staging.join(PART_FILE)).and_then(|w| {
            publish(&staging, &target)?;
            Ok(w)
        });
    let (rows, row_groups) = match written {
        Ok(w) => w,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            let _ = fs::remove_dir(&staging_root);
            return Err(e);
        }
    };
    // Another export may be using the staging folder; then it stays, empty, for it.
    let _ = fs::remove_dir(&staging_root);
    let file = target.join(PART_FILE);
    let bytes = fs::metadata(&file)?.len();
    Ok(ParquetSummary {
        file,
        host: opts.host.clone(),
        rows,
        row_groups,
        bytes,
        columns: cols.len() + 2,
        secs: started.elapsed().as_secs_f64(),
    })
}

/// Staging folders of this partition left by exports that were killed (their process is
/// gone): they would otherwise pile up, one file of the whole index each.
fn remove_stale_staging(staging_root: &Path, partition_name: &str) {
    let Ok(entries) = fs::read_dir(staging_root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix(partition_name))
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        let pid = rest.strip_suffix(".old").unwrap_or(rest);
        let Ok(pid) = pid.parse::<libc::pid_t>() else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Stream the table into one Parquet file: one SQLite cursor, `BATCH_ROWS` decoded rows
/// at a time, row groups flushed by the writer every `ROW_GROUP_ROWS`.
fn write_file(
    conn: &Connection,
    cols: &[Column],
    schema: SchemaRef,
    host: &str,
    path: &Path,
) -> Result<(u64, usize)> {
    let roots = Roots::load(conn)?;
    let path_col = cols.iter().position(|c| c.name == "file_path");
    let select = cols
        .iter()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    // Path order puts a folder's files together: better compression, and row-group
    // statistics on the path that let engines skip groups.
    let order = if cols.iter().any(|c| c.name == "path_bytes") {
        "path_bytes"
    } else {
        "rowid"
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {select} FROM library_index ORDER BY {order}"
    ))?;

    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(format!("musicdex {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut writer = ArrowWriter::try_new(BufWriter::new(file), schema.clone(), Some(props))?;

    let mut builders: Vec<ColumnBuilder> =
        cols.iter().map(|c| ColumnBuilder::new(c.kind)).collect();
    let mut hosts = StringBuilder::new();
    let mut root_col = StringBuilder::new();
    let mut pending = 0usize;
    let mut rows = 0u64;
    let mut cursor = stmt.query([])?;
    while let Some(row) = cursor.next()? {
        let file_path = match path_col {
            Some(i) => match row.get_ref(i)? {
                ValueRef::Text(t) => Some(String::from_utf8_lossy(t)),
                _ => None,
            },
            None => None,
        };
        for (i, (col, b)) in cols.iter().zip(builders.iter_mut()).enumerate() {
            b.append(row.get_ref(i)?, col).with_context(|| {
                format!(
                    "cannot export row {} ({}), column {}",
                    rows + 1,
                    file_path.as_deref().unwrap_or("no file_path"),
                    col.name
                )
            })?;
        }
        hosts.append_value(host);
        root_col.append_option(file_path.as_deref().and_then(|p| roots.root_of(p)));
        pending += 1;
        rows += 1;
        if pending == BATCH_ROWS {
            flush(
                &mut writer,
                &schema,
                &mut builders,
                &mut hosts,
                &mut root_col,
            )?;
            pending = 0;
        }
    }
    if pending > 0 {
        flush(
            &mut writer,
            &schema,
            &mut builders,
            &mut hosts,
            &mut root_col,
        )?;
    }
    // finish() writes the footer and flushes through the BufWriter to the file.
    let meta = writer.finish()?;
    writer
        .inner_mut()
        .get_ref()
        .sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    Ok((rows, meta.num_row_groups()))
}

fn flush(
    writer: &mut ArrowWriter<BufWriter<File>>,
    schema: &SchemaRef,
    builders: &mut [ColumnBuilder],
    hosts: &mut StringBuilder,
    roots: &mut StringBuilder,
) -> Result<()> {
    let mut arrays: Vec<ArrayRef> = builders.iter_mut().map(ColumnBuilder::finish).collect();
    arrays.push(Arc::new(hosts.finish()));
    arrays.push(Arc::new(roots.finish()));
    writer.write(&RecordBatch::try_new(schema.clone(), arrays)?)?;
    Ok(())
}

enum ColumnBuilder {
    Int(Int64Builder),
    Real(Float64Builder),
    Text(StringBuilder),
    Blob(BinaryBuilder),
}

impl ColumnBuilder {
    fn new(kind: Kind) -> ColumnBuilder {
        match kind {
            Kind::Int => ColumnBuilder::Int(Int64Builder::with_capacity(BATCH_ROWS)),
            Kind::Real => ColumnBuilder::Real(Float64Builder::with_capacity(BATCH_ROWS)),
            Kind::Text => ColumnBuilder::Text(StringBuilder::new()),
            Kind::Blob => ColumnBuilder::Blob(BinaryBuilder::new()),
        }
    }

    /// A value that does not fit the column's declared type is an error, not a silent
    /// conversion: the export must hold what the index holds.
    fn append(&mut self, v: ValueRef<'_>, col: &Column) -> Result<()> {
        if let ValueRef::Null = v {
            if !col.nullable {
                bail!("NULL in a NOT NULL column");
            }
            match self {
                ColumnBuilder::Int(b) => b.append_null(),
                ColumnBuilder::Real(b) => b.append_null(),
                ColumnBuilder::Text(b) => b.append_null(),
                ColumnBuilder::Blob(b) => b.append_null(),
            }
            return Ok(());
        }
        match (self, v) {
            (ColumnBuilder::Int(b), ValueRef::Integer(n)) => b.append_value(n),
            (ColumnBuilder::Real(b), ValueRef::Real(f)) => b.append_value(f),
            (ColumnBuilder::Real(b), ValueRef::Integer(n)) if (n as f64) as i64 == n => {
                b.append_value(n as f64)
            }
            (ColumnBuilder::Text(b), ValueRef::Text(t)) => match std::str::from_utf8(t) {
                Ok(s) => b.append_value(s),
                Err(_) => bail!("text that is not valid UTF-8"),
            },
            (ColumnBuilder::Blob(b), ValueRef::Blob(x) | ValueRef::Text(x)) => b.append_value(x),
            (_, other) => bail!(
                "a {:?} value in a column declared {}",
                other.data_type(),
                match col.kind {
                    Kind::Int => "INTEGER",
                    Kind::Real => "REAL",
                    Kind::Text => "TEXT",
                    Kind::Blob => "BLOB",
                }
            ),
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Real(b) => Arc::new(b.finish()),
            ColumnBuilder::Text(b) => Arc::new(b.finish()),
            ColumnBuilder::Blob(b) => Arc::new(b.finish()),
        }
    }
}

/// The library roots the index runs were given (`index_runs.roots`), longest first,
/// so each file is attributed to the innermost root that holds it.
struct Roots(Vec<String>);

impl Roots {
    fn load(conn: &Connection) -> Result<Roots> {
        let has_stats: bool = conn.query_row(
            "SELECT count(*) > 0 FROM sqlite_schema WHERE type = 'table' AND name = 'index_runs'",
            [],
            |r| r.get(0),
        )?;
        let mut roots = std::collections::BTreeSet::new();
        if has_stats {
            let mut stmt = conn.prepare("SELECT DISTINCT roots FROM index_runs")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let text: String = r.get(0)?;
                roots.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
            }
        }
        let mut v: Vec<String> = roots.into_iter().collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.len()));
        Ok(Roots(v))
    }

    /// Roots are stored as (lossy) text, so they are matched against `file_path`, the
    /// path rendered the same way: a '/' boundary is ASCII and survives the rendering.
    fn root_of(&self, path: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|r| {
                path == r.as_str()
                    || (path.starts_with(r.as_str())
                        && (r.ends_with('/') || path.as_bytes().get(r.len()) == Some(&b'/')))
            })
            .map(String::as_str)
    }
}

/// Put the staged partition at `target`. An existing partition is swapped out with
/// renameat2(RENAME_EXCHANGE), one atomic step, then deleted; where the filesystem
/// refuses the exchange, it is renamed aside first (a moment with no partition, never a
/// partial one).
fn publish(staging: &Path, target: &Path) -> Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    if fs::symlink_metadata(target).is_ok() {
        match exchange(staging, target) {
            Ok(()) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                let mut aside = staging.as_os_str().to_owned();
                aside.push(".old");
                let aside = PathBuf::from(aside);
                fs::rename(target, &aside)
                    .with_context(|| format!("cannot move {} aside", target.display()))?;
                if let Err(e) = fs::rename(staging, target) {
                    let _ = fs::rename(&aside, target);
                    return Err(e).with_context(|| format!("cannot create {}", target.display()));
                }
                fs::rename(&aside, staging)?;
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot replace {}", target.display()));
            }
        }
        // `staging` now holds the old partition.
        fs::remove_dir_all(staging)
            .with_context(|| format!("cannot remove the old partition at {}", staging.display()))?;
    } else {
        fs::rename(staging, target)
            .with_context(|| format!("cannot create {}", target.display()))?;
    }
    // The rename is durable only once the folder holding it is synced.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok(())
}

fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    let ca = cstring(a.as_os_str())?;
    let cb = cstring(b.as_os_str())?;
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn cstring(s: &OsStr) -> std::io::Result<std::ffi::CString> {
    std::ffi::CString::new(s.as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_follows_sqlite_rules() {
        for (decl, kind) in [
            ("INTEGER", Kind::Int),
            ("BIGINT", Kind::Int),
            ("TEXT", Kind::Text),
            ("VARCHAR(40)", Kind::Text),
            ("BLOB", Kind::Blob),
            ("", Kind::Blob),
            ("REAL", Kind::Real),
            ("DOUBLE PRECISION", Kind::Real),
            ("NUMERIC", Kind::Real),
            // Rule order matters: "INT" wins over "CHAR".
            ("CHARINT", Kind::Int),
        ] {
            assert_eq!(Kind::from_declared(decl), kind, "{decl:?}");
        }
    }

    #[test]
    fn host_names() {
        for ok in ["nas1", "srv-02.example.org", "box_3"] {
            check_host(ok).unwrap();
        }
        for bad in ["", ".hidden", "a/b", "a b", "x=y", "é", "..", "a%2F"] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn innermost_root_wins() {
        let roots = Roots(vec!["/music/incoming".into(), "/music".into(), "/".into()]);
        assert_eq!(
            roots.root_of("/music/incoming/a.mp3"),
            Some("/music/incoming")
        );
        assert_eq!(roots.root_of("/music/incomingx/a.mp3"), Some("/music"));
        assert_eq!(roots.root_of("/music"), Some("/music"));
        assert_eq!(roots.root_of("/other/a.mp3"), Some("/"));
        assert_eq!(Roots(vec!["/music".into()]).root_of("/musical/a.mp3"), None);
    }
}
