#!/usr/bin/env python3
"""The replaced tool's own code on musicdex's database, and musicdex taking over the tool's.

Usage: tool_compat.py MUSICDEX_BINARY

The tool is the unchanged `library` package of music-tools at
$MUSICDEX_SHARED/clients/music_tools/library (needs `pip install mutagen rich`; ci/test
installs them). The binary must be a debug build: the take-over test uses its
MUSICDEX_TEST_KILL_IN_TAKEOVER hook, which SIGKILLs the process after the migration has
done all its work and before it commits (a `kill -9` at the worst moment, every time).

1. musicdex indexes the fixture library; the tool's LibraryDatabase, DuplicateChecker and
   ImportVetter read it (statistics, every row without a datetime parse failure, hash
   lookups, search, a copy and a new song, a vet with its history); then musicdex
   `stats`, `dupes` and `vet` read the history the tool wrote.
2. The tool's LibraryIndexer builds library.db; musicdex killed mid-take-over leaves it
   byte-for-byte the same database (logical dump); the take-over keeps ids, indexed_at and
   history, recomputes the tool's placeholders; the next run is incremental; the tool's
   code still works.
3. A real `kill -9` at a moment found by polling the write-ahead log of a 20k-row take-over:
   the database is all the tool's or all taken over.
"""
import hashlib
import io
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = Path(os.environ.get("MUSICDEX_SHARED", REPO.parent / "shared"))
sys.path.insert(0, str(SHARED / "clients" / "music_tools"))

try:
    import mutagen  # noqa: F401
    from rich.console import Console

    from library.database import LibraryDatabase
    from library.duplicate_checker import DuplicateChecker
    from library.hash_utils import calculate_metadata_hash
    from library.indexer import LibraryIndexer
    from library.vetter import ImportVetter
except ImportError as e:
    sys.exit(f"tool_compat.py: {e}; ci/test installs mutagen and rich (pip install mutagen rich)")

BIN = None
FIXTURE = REPO / "fixtures" / "library"
EXPECTED = json.loads((REPO / "fixtures" / "library.expected.json").read_text())
AUDIO = {".mp3", ".flac", ".m4a", ".wav", ".ogg", ".opus", ".aiff", ".aif"}


class Warnings(logging.Handler):
    """Every warning the tool logs, kept to be checked."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def take(self):
        out, self.messages = self.messages, []
        return out


WARN = Warnings()
logging.getLogger("library").addHandler(WARN)
logging.getLogger("library").setLevel(logging.WARNING)
logging.getLogger("library").propagate = False


def quiet():
    return Console(file=io.StringIO(), width=200)


def musicdex(*args, env=None, check=True):
    p = subprocess.run(
        [BIN, *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if check and p.returncode != 0:
        raise AssertionError(f"musicdex {' '.join(map(str, args))}: {p.returncode}\n{p.stderr}")
    return p


def eq(got, want, what):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, want {want!r}")


def tool_mtime(path):
    """The tool's own view of a file's mtime (LibraryIndexer._is_file_unchanged)."""
    return datetime.fromtimestamp(Path(path).stat().st_mtime, tz=timezone.utc)


def audio_files(root):
    return sorted(
        str(p) for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() in AUDIO
    )


def make_import_folder(tmp, library):
    """A folder of new music: a copy of a library song and a song the library lacks.

    FLAC: the tool's checker reads Vorbis comments (its tag names miss ID3 frames, so it
    sees an MP3 as untagged)."""
    folder = tmp / "incoming"
    folder.mkdir()
    original = Path(library) / "Motörhead/Ace of Spades/01 Ace of Spades.flac"
    copy = folder / "Ace of Spades (copy).flac"
    shutil.copyfile(original, copy)
    new = folder / "Completely New Song.flac"
    shutil.copyfile(original, new)
    from mutagen.flac import FLAC

    tags = FLAC(str(new))
    tags["artist"] = "Zzyzx Quartet"
    tags["title"] = "Unheard Ballad Number Nine"
    tags["album"] = "Never Indexed"
    tags.save()
    # Retagging alone makes the same recording (musicdex's audio hash says so): change
    # the audio too, four bytes in the middle of the frames, so the song is really new.
    data = bytearray(new.read_bytes())
    assert data[:4] == b"fLaC", "the fixture starts with its FLAC marker"
    at = 4
    while True:
        header, size = data[at], int.from_bytes(data[at + 1 : at + 4], "big")
        at += 4 + size
        if header & 0x80:
            break
    mid = at + (len(data) - at) // 2
    for i in range(4):
        data[mid + i] ^= 0x5A
    new.write_bytes(bytes(data))
    return folder, original.resolve(), copy, new


def check_tool_reads(db_path, library, tmp):
    db = LibraryDatabase(str(db_path))
    files = audio_files(library)
    eq(len(EXPECTED["files"]), len(files), "fixture audio files")

    stats = db.get_statistics()
    eq(WARN.take(), [], "warnings from get_statistics")
    eq(stats.total_files, len(files), "get_statistics total_files")
    eq(stats.total_size, sum(Path(f).stat().st_size for f in files), "total_size")
    want_formats = {}
    for f in files:
        ext = Path(f).suffix.lower().lstrip(".")
        want_formats[ext] = want_formats.get(ext, 0) + 1
    eq(sum(stats.formats_breakdown.values()), len(files), "formats_breakdown total")
    assert stats.last_index_time is not None, "last_index_time"
    age = datetime.now(timezone.utc) - stats.last_index_time
    assert 0 <= age.total_seconds() < 600, f"last_index_time {stats.last_index_time}"
    assert stats.index_duration > 0, "index_duration"
    artists = {e["artist"] for e in EXPECTED["files"] if e.get("artist")}
    eq(stats.artists_count, len(artists), "artists_count")
    # The row musicdex wrote is the one the tool would have written from these totals.
    with sqlite3.connect(db_path) as c:
        row = c.execute(
            "SELECT total_files, total_size, formats_breakdown, artists_count, albums_count "
            "FROM library_stats ORDER BY created_at DESC LIMIT 1"
        ).fetchone()
    eq(
        row,
        (
            stats.total_files,
            stats.total_size,
            json.dumps(stats.formats_breakdown),
            stats.artists_count,
            stats.albums_count,
        ),
        "library_stats row",
    )

    rows = db.get_all_files()
    eq(WARN.take(), [], "warnings from get_all_files (datetime parse failures)")
    eq(sorted(r.file_path for r in rows), files, "get_all_files paths")
    indexer = LibraryIndexer(str(db_path), console=quiet())
    for r in rows:
        assert r.indexed_at is not None, r.file_path
        eq(r.file_mtime, tool_mtime(r.file_path), f"file_mtime of {r.file_path}")
        # The tool's incremental check sees musicdex's rows as unchanged.
        assert indexer._is_file_unchanged(Path(r.file_path), r), r.file_path
        eq(r.file_size, Path(r.file_path).stat().st_size, "file_size")
        eq(
            r.metadata_hash,
            calculate_metadata_hash(r.artist, r.title, filename=r.filename),
            f"metadata_hash of {r.file_path}",
        )
        by_meta = db.get_files_by_metadata_hash(r.metadata_hash)
        assert r.file_path in [m.file_path for m in by_meta], r.file_path
        by_content = db.get_file_by_content_hash(r.file_content_hash)
        assert by_content is not None, r.file_path
        eq(by_content.file_content_hash, r.file_content_hash, "content lookup")
    eq(WARN.take(), [], "warnings from lookups")

    hits = db.search_by_artist_title(artist="DAFT PUNK", title="one more time")
    eq(
        [h.file_path for h in hits],
        [str((Path(library) / "Daft Punk/Discovery/01 One More Time.mp3").resolve())],
        "search_by_artist_title",
    )
    assert db.verify_database_integrity()

    folder, original, copy, new = make_import_folder(tmp, library)
    checker = DuplicateChecker(db)
    r = checker.check_file(str(copy))
    eq((r.is_duplicate, r.match_type), (True, "exact_metadata"), "check_file on a copy")
    eq(r.matched_file.file_path, str(original), "the copy's match")
    r = checker.check_file(str(new))
    eq((r.is_duplicate, r.match_type), (False, "none"), "check_file on a new song")

    vetter = ImportVetter(db, console=quiet())
    report = vetter.vet_folder(str(folder), show_progress=False)
    eq([p for p, _ in report.duplicates], [str(copy.resolve())], "vet duplicates")
    eq(report.new_songs, [str(new.resolve())], "vet new songs")
    eq(report.uncertain, [], "vet uncertain")
    msgs = WARN.take()
    assert not any("vetting" in m for m in msgs), msgs
    history = db.get_vetting_history()
    eq(len(history), 1, "history rows")
    h = history[0]
    eq(
        (h["import_folder"], h["total_files"], h["duplicates_found"], h["new_songs"]),
        (str(folder.resolve()), 2, 1, 1),
        "the tool's history row",
    )
    vetter.get_vetting_history()
    return folder, copy, new


def check_musicdex_reads(db_path, folder, copy, new):
    """musicdex's stats, dupes and vet on the database the tool wrote history into."""
    stats = json.loads(musicdex("stats", "--db", db_path, "--json").stdout)
    tool_rows = [v for v in stats["recent_vets"] if v["engine"] is None]
    eq(len(tool_rows), 1, "musicdex stats lists the tool's vet")
    eq(tool_rows[0]["import_folder"], str(folder.resolve()), "its folder")
    eq(
        (tool_rows[0]["new_songs"], tool_rows[0]["duplicates_found"]),
        (1, 1),
        "its counts",
    )
    text = musicdex("stats", "--db", db_path).stdout
    assert "(by music-tools)" in text, text
    musicdex("dupes", "--db", db_path)
    vet = json.loads(musicdex("vet", folder, "--db", db_path, "--json").stdout)
    tool_vetted_at = tool_rows[0]["vetted_at"]
    eq(vet["previously_vetted"], tool_vetted_at, "musicdex vet reads the tool's vet of the folder")
    classes = {Path(f["path"]).name: f["verdict"] for f in vet["files"]}
    eq(classes.get(copy.name), "duplicate", f"musicdex vet of the copy ({vet['files']})")
    eq(classes.get(new.name), "new", "musicdex vet of the new song")
    # The tool reads musicdex's row as one of its own.
    db = LibraryDatabase(str(db_path))
    history = db.get_vetting_history()
    eq(len(history), 2, "history after musicdex vet")
    newest = history[0]
    datetime.fromisoformat(newest["vetted_at"])
    eq(
        (newest["import_folder"], newest["total_files"], newest["new_songs"]),
        (str(folder.resolve()), 2, 1),
        "musicdex's history row as the tool reads it",
    )
    eq(newest["duplicates_found"] + newest["uncertain_matches"], 1, "its duplicates")
    ImportVetter(db, console=quiet()).get_vetting_history()
    eq(WARN.take(), [], "warnings")


def dump(db_path):
    """The database's whole logical content (schema, rows, user_version)."""
    c = sqlite3.connect(db_path)
    try:
        lines = list(c.iterdump())
        lines.append(f"user_version={c.execute('PRAGMA user_version').fetchone()[0]}")
        return lines
    finally:
        c.close()


def check_take_over(tmp):
    library = tmp / "library2"
    shutil.copytree(FIXTURE, library)
    db_path = tmp / "tool" / "library.db"
    LibraryIndexer(str(db_path), console=quiet()).index_library(str(library), show_progress=False)
    db = LibraryDatabase(str(db_path))
    folder = tmp / "incoming2"
    folder.mkdir()
    hunter = "Sigur Rós/Ágætis byrjun/03 Flugufrelsarinn.flac"
    shutil.copyfile(library / hunter, folder / "Flugufrelsarinn.flac")
    ImportVetter(db, console=quiet()).vet_folder(str(folder), show_progress=False)
    WARN.take()
    # What the tool leaves for the take-over to repair: a hash that failed, and a metadata
    # hash an older normalisation (ASCII-only lower-casing) produced.
    with sqlite3.connect(db_path) as c:
        c.execute(
            "UPDATE library_index SET file_content_hash = 'HASH_FAILED' WHERE file_path LIKE ?",
            ("%Ace of Spades.flac",),
        )
        c.execute(
            "UPDATE library_index SET metadata_hash = ? WHERE file_path LIKE ?",
            (hashlib.md5("motörhead|love me like a reptile".encode()).hexdigest(), "%Reptile.MP3"),
        )
        # A file the tool saw and that is gone since: kept, inactive after the take-over.
        c.execute(
            "INSERT INTO library_index (file_path, filename, file_format, file_size, "
            "metadata_hash, file_content_hash, indexed_at, file_mtime, is_active) "
            "VALUES (?, 'gone.mp3', 'mp3', 10, 'x', 'y', '2024-01-01T00:00:00+00:00', "
            "'2024-01-01T00:00:00+00:00', 1)",
            (str(library.resolve() / "gone.mp3"),),
        )
    with sqlite3.connect(db_path) as c:
        before_rows = {
            r[0]: r[1:]
            for r in c.execute("SELECT file_path, id, indexed_at FROM library_index")
        }
        before_stats = c.execute("SELECT * FROM library_stats ORDER BY id").fetchall()
        before_history = c.execute("SELECT * FROM vetting_history ORDER BY id").fetchall()
    before = dump(db_path)

    # Killed with everything done but the commit: the tool's database is as it was.
    p = musicdex(
        "index", library, "--db", db_path,
        env={"MUSICDEX_TEST_KILL_IN_TAKEOVER": "1"}, check=False,
    )
    eq(p.returncode, -9, f"killed take-over ({p.stderr})")
    eq(dump(db_path), before, "the tool's database after a killed take-over")
    LibraryDatabase(str(db_path)).get_statistics()
    eq(dump(db_path), before, "the tool's database still its own")

    # A database that is neither the tool's nor musicdex's is refused, untouched.
    odd = tmp / "odd.db"
    with sqlite3.connect(odd) as c:
        c.execute("CREATE TABLE library_index (id INTEGER PRIMARY KEY, path TEXT)")
    odd_before = dump(odd)
    p = musicdex("index", library, "--db", odd, check=False)
    assert p.returncode != 0 and "left untouched" in p.stderr, p.stderr
    eq(dump(odd), odd_before, "a foreign database")

    # The take-over.
    out = json.loads(musicdex("index", library, "--db", db_path, "--json").stdout)
    eq(out["files_found"], len(EXPECTED["files"]), "files found")
    # The tool skips files mutagen cannot parse; musicdex indexes them (with the error).
    untold = sorted(set(audio_files(library.resolve())) - set(before_rows))
    assert len(untold) < len(EXPECTED["files"]) // 4, untold
    eq(out["added"], len(untold), f"take-over adds only the files the tool skipped {untold}")
    with sqlite3.connect(db_path) as c:
        eq(c.execute("PRAGMA user_version").fetchone()[0] > 0, True, "schema version")
        after_rows = {
            r[0]: r[1:]
            for r in c.execute("SELECT file_path, id, indexed_at FROM library_index")
        }
        eq(
            {p: v for p, v in after_rows.items() if p in before_rows},
            before_rows,
            "ids and indexed_at kept",
        )
        eq(
            c.execute("SELECT is_active FROM library_index WHERE filename = 'gone.mp3'")
            .fetchone()[0],
            0,
            "the vanished file, marked inactive",
        )
        stats_rows = c.execute("SELECT * FROM library_stats ORDER BY id").fetchall()
        eq(stats_rows[: len(before_stats)], before_stats, "the tool's library_stats rows")
        eq(len(stats_rows), len(before_stats) + 1, "one library_stats row per run")
        history = c.execute(
            "SELECT id, import_folder, total_files, duplicates_found, new_songs, "
            "uncertain_matches, threshold_used, vetted_at FROM vetting_history ORDER BY id"
        ).fetchall()
        eq(history, before_history, "the tool's vetting history")
        bad = c.execute(
            "SELECT file_path FROM library_index WHERE is_active = 1 AND "
            "(file_content_hash = 'HASH_FAILED' OR length(file_content_hash) <> 32 "
            "OR file_mtime_ns IS NULL)"
        ).fetchall()
        eq(bad, [], "rows with the tool's placeholders left")
    db = LibraryDatabase(str(db_path))
    for r in db.get_all_files():
        eq(
            r.metadata_hash,
            calculate_metadata_hash(r.artist, r.title, filename=r.filename),
            f"recomputed metadata_hash of {r.file_path}",
        )
        eq(r.file_mtime, tool_mtime(r.file_path), "file_mtime")
    eq(WARN.take(), [], "warnings after the take-over")
    # Incremental from here on.
    out = json.loads(musicdex("index", library, "--db", db_path, "--json").stdout)
    eq(
        (out["added"], out["updated"], out["unchanged"]),
        (0, 0, len(EXPECTED["files"])),
        "the run after the take-over",
    )
    # The tool's code on the taken-over database.
    stats = db.get_statistics()
    eq(stats.total_files, len(EXPECTED["files"]), "tool statistics after take-over")
    r = DuplicateChecker(db).check_file(str(folder / "Flugufrelsarinn.flac"))
    eq((r.is_duplicate, r.match_type), (True, "exact_metadata"), "check_file after")
    # Its indexer too: a new file it adds gets musicdex's key, and musicdex reads it then.
    shutil.copyfile(folder / "Flugufrelsarinn.flac", library / "Flugufrelsarinn again.flac")
    LibraryIndexer(str(db_path), console=quiet()).index_library(str(library), show_progress=False)
    out = json.loads(musicdex("index", library, "--db", db_path, "--json").stdout)
    eq((out["added"], out["updated"]), (0, 1), "musicdex after the tool indexed a file")
    eq(WARN.take(), [], "warnings at the end")


def check_kill_mid_migration(tmp, rows=20000):
    """A real `kill -9` while the take-over runs, timed by polling its write-ahead log:
    the database is then all the tool's or all taken over, never a mix."""
    db_path = tmp / "big" / "library.db"
    LibraryDatabase(str(db_path))
    with sqlite3.connect(db_path) as c:
        c.executemany(
            "INSERT INTO library_index (file_path, filename, artist, title, file_format, "
            "file_size, metadata_hash, file_content_hash, indexed_at, file_mtime) "
            "VALUES (?, ?, ?, ?, 'flac', ?, ?, ?, '2025-01-01T00:00:00+00:00', "
            "'2024-12-31T00:00:00.000001+00:00')",
            (
                (f"/nowhere/{i:06d}.flac", f"{i:06d}.flac", f"A{i % 97}", f"T{i}", i,
                 hashlib.md5(str(i).encode()).hexdigest(), f"{i}_{i:064x}")
                for i in range(rows)
            ),
        )
        c.execute("INSERT INTO vetting_history (import_folder, vetted_at) VALUES ('/in', 'x')")
    before = dump(db_path)
    empty = tmp / "empty-library"
    empty.mkdir()
    wal = Path(f"{db_path}-wal")
    p = subprocess.Popen(
        [BIN, "index", str(empty), "--db", str(db_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    while p.poll() is None:
        if wal.exists() and wal.stat().st_size > 256 << 10:
            break
    p.kill()
    p.wait()
    after = dump(db_path)
    if after == before:
        state = "the tool's, untouched"
    else:
        with sqlite3.connect(db_path) as c:
            eq(c.execute("PRAGMA user_version").fetchone()[0] > 0, True, "taken over")
            eq(
                c.execute("SELECT count(*), count(path_bytes) FROM library_index").fetchone(),
                (rows, rows),
                "every row taken over",
            )
            eq(c.execute("SELECT count(*) FROM vetting_history").fetchone()[0], 1, "history")
        state = "taken over whole"
    print(f"tool_compat: kill -9 (exit {p.returncode}) during the take-over: database {state}")


def main():
    global BIN
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    BIN = str(Path(sys.argv[1]).resolve())
    with tempfile.TemporaryDirectory(prefix="musicdex-tool-") as t:
        tmp = Path(t)
        library = tmp / "library"
        shutil.copytree(FIXTURE, library)
        db_path = tmp / "library.db"
        musicdex("index", library, "--db", db_path)
        folder, copy, new = check_tool_reads(db_path, library.resolve(), tmp)
        check_musicdex_reads(db_path, folder, copy, new)
        check_take_over(tmp)
        check_kill_mid_migration(tmp)
    print("tool_compat: ok")


if __name__ == "__main__":
    main()
