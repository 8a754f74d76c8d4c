use super::*;
use crate::engine::TestRun;
use crate::media::reference::read_reference;
use crate::scan::WalkOptions;
use std::path::Path;

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/library")
}

fn ring_usable() -> bool {
    let ok = probe(&Config::for_threads(1, &Tuning::default())).is_ok();
    if !ok {
        eprintln!("skipped: io_uring is refused here");
    }
    ok
}

/// Run the ring engine on one thread over the fixture library with `fault`; returns
/// what `run` returned and the changes sent.
fn run_with(fault: fault::Fault) -> (Result<WalkProblems>, usize) {
    let walk = WalkOptions {
        follow_symlinks: false,
        filter: crate::scan::ExtFilter::parse("*").unwrap(),
    };
    let test = TestRun::new(library(), walk);
    let ctx = test.ctx();
    let mut cfg = Config::for_threads(1, &Tuning::default());
    cfg.ring_statx = Some(false);
    cfg.fault = fault;
    let (tx, rx) = crossbeam_channel::unbounded();
    let r = run(&ctx, tx, cfg);
    (r, rx.try_iter().map(|b| b.len()).sum())
}

fn log() -> &'static fault::Log {
    Box::leak(Box::default())
}

#[test]
fn a_failed_submit_drains_what_was_queued() {
    if !ring_usable() {
        return;
    }
    let log = log();
    let (r, _) = run_with(fault::Fault {
        fail_submit_at: Some(0),
        log: Some(log),
        ..Default::default()
    });
    let e = r.expect_err("the injected failure ends the run");
    assert!(
        format!("{e:#}").contains("injected submit failure"),
        "{e:#}"
    );
    let outstanding = log.outstanding_at_drop.load(Ordering::SeqCst);
    // The window was filled before the first submit: every chain was still queued.
    assert!(outstanding >= 4, "{outstanding}");
    assert_eq!(log.reaped_in_drain.load(Ordering::SeqCst), outstanding);
    assert!(log.canaries_checked.load(Ordering::SeqCst) > 0);
    assert_eq!(log.canaries_left.load(Ordering::SeqCst), 0);
}

#[test]
fn a_panic_mid_flight_drains_before_buffers_are_freed() {
    if !ring_usable() {
        return;
    }
    let log = log();
    let (r, _) = run_with(fault::Fault {
        panic_after_push: Some(5),
        log: Some(log),
        ..Default::default()
    });
    let e = r.expect_err("the injected panic ends the run");
    assert!(format!("{e:#}").contains("panicked"), "{e:#}");
    let outstanding = log.outstanding_at_drop.load(Ordering::SeqCst);
    // At least the chain queued right before the panic.
    assert!(outstanding >= 4, "{outstanding}");
    assert_eq!(log.reaped_in_drain.load(Ordering::SeqCst), outstanding);
    assert_eq!(log.canaries_left.load(Ordering::SeqCst), 0);
}

#[test]
fn without_faults_nothing_is_left_at_teardown() {
    if !ring_usable() {
        return;
    }
    let log = log();
    let (r, sent) = run_with(fault::Fault {
        log: Some(log),
        ..Default::default()
    });
    r.unwrap();
    assert!(sent >= 10, "{sent}");
    assert_eq!(log.outstanding_at_drop.load(Ordering::SeqCst), 0);
    assert!(
        log.pushes.load(Ordering::SeqCst) == 0,
        "no push hook without a fault"
    );
}

#[test]
fn a_chain_longer_than_the_queue_is_read_by_the_reference_path() {
    if !ring_usable() {
        return;
    }
    let file = library().join("Daft Punk/Discovery/02 Aerodynamic.flac");
    let dir_path = file.parent().unwrap();
    let test = TestRun::new(dir_path.to_path_buf(), WalkOptions::default());
    let ctx = test.ctx();
    let mut cfg = Config::for_threads(1, &Tuning::default());
    cfg.window = 2;
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut w = RingWorker {
        ring: build_ring(&cfg).unwrap(),
        slots: (0..cfg.window).map(|_| Slot::default()).collect(),
        free: (0..cfg.window).rev().collect(),
        hashing: Vec::new(),
        audio_hashing: Vec::new(),
        pool: Pool::default(),
        target: 1,
        since_wait: 0,
        extra: 0,
        ctx: &ctx,
        cfg,
        out: Batcher::new(tx, ctx.stop),
        stats: Default::default(),
    };
    let fd = rustix::fs::open(
        dir_path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY,
        rustix::fs::Mode::empty(),
    )
    .unwrap();
    let meta = std::fs::metadata(&file).unwrap();
    let stat = Stat::from_metadata(&meta);
    let s = w.free.pop().unwrap();
    let slot = &mut w.slots[s];
    slot.dir = Some(Arc::new(Dir {
        fd,
        path: dir_path.to_path_buf(),
    }));
    slot.name = CString::new("02 Aerodynamic.flac").unwrap();
    slot.job = Some(Job::new(file.clone(), stat, None, Default::default()));
    slot.phase = Phase::Read;
    let cap = w.sq_capacity();
    // One read per 16 bytes of the file's start: far more than the queue holds.
    let reads: Vec<_> = (0..cap as u64)
        .map(|i| (i * 16, Vec::with_capacity(16), 16))
        .collect();
    w.submit_chain(s, reads).unwrap();
    assert_eq!(w.outstanding(), 0, "nothing was queued");
    assert_eq!(w.free.len(), 2, "the slot was released");
    w.out.flush().unwrap();
    drop(w);
    let changes: Vec<Change> = rx.try_iter().flatten().collect();
    let [Change::Record { record, .. }] = &changes[..] else {
        panic!("one record: {changes:?}");
    };
    assert_eq!(**record, read_reference(file, stat, Default::default()));
    assert!(record.content_hash.is_some());
}
