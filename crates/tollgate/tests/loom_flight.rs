//! loom models of flight's leader hand-off and cleanup, on the real `SlotMap` that holds
//! flight's calls (its shard locks are loom's under `cfg(tollgate_loom)`). The model mirrors
//! the three things that touch a call's entry: a caller joins (`acquire_with`), a caller goes
//! away with the abort option (`release_hashed`, whose `true` aborts the work), and the
//! finished work retires its own entry (`remove_hashed`). A last model copies the hand-off of a
//! leader's inline work to a task (`Call::hand_to_task`, `Call::started`, `Call::move_to_task`
//! in `flight/task.rs`): keep the two in step. Run with:
//! `RUSTFLAGS="--cfg tollgate_loom" cargo test -p tollgate --release --test loom_flight`
#![cfg(tollgate_loom)]

use std::sync::Arc;

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;
use tollgate::keyed::slots::SlotMap;

/// What flight's `Call` holds that matters here: its key's hash (flight releases and removes
/// its slot by hash and identity), whether it was aborted, whether it finished.
#[derive(Debug)]
struct Call {
    hash: u64,
    aborted: AtomicBool,
    finished: AtomicBool,
}

impl Call {
    fn new(hash: u64) -> Self {
        Call {
            hash,
            aborted: AtomicBool::new(false),
            finished: AtomicBool::new(false),
        }
    }
}

const KEY: u8 = 1;

/// A caller: leads or joins, then is dropped (abort option on). Returns the call it used.
fn caller(calls: &SlotMap<u8, Call>, executions: &AtomicUsize) -> Arc<Call> {
    let (call, led) = calls.acquire_with(KEY, |_, hash| Call::new(hash));
    if led {
        executions.fetch_add(1, Ordering::SeqCst);
    }
    // While a caller holds the call, it must not be aborted: nobody aborts work with waiters.
    assert!(
        !call.aborted.load(Ordering::SeqCst),
        "joined an aborted call"
    );
    if calls.release_hashed(call.hash, &call) {
        call.aborted.store(true, Ordering::SeqCst);
    }
    call
}

/// The work finishing: retire the entry, then publish.
fn finish(calls: &SlotMap<u8, Call>, call: &Arc<Call>) {
    calls.remove_hashed(call.hash, call);
    call.finished.store(true, Ordering::SeqCst);
}

#[test]
fn leader_dropped_while_a_joiner_arrives_never_aborts_the_joiners_call() {
    loom::model(|| {
        let calls = Arc::new(SlotMap::with_shards(1));
        let executions = Arc::new(AtomicUsize::new(0));
        let joiner = {
            let (calls, executions) = (calls.clone(), executions.clone());
            thread::spawn(move || caller(&calls, &executions))
        };
        let led = caller(&calls, &executions);
        let joined = joiner.join().unwrap();
        // Either the joiner shared the leader's call, or it arrived after the leader's call was
        // aborted and removed, and started its own: never two live calls at once.
        let runs = executions.load(Ordering::SeqCst);
        if Arc::ptr_eq(&led, &joined) {
            assert_eq!(runs, 1);
        } else {
            assert_eq!(runs, 2);
            assert!(led.aborted.load(Ordering::SeqCst) || joined.aborted.load(Ordering::SeqCst));
        }
        assert_eq!(calls.len(), 0, "an entry outlived every caller");
    });
}

#[test]
fn finishing_work_and_a_late_caller_leave_no_entry_behind() {
    loom::model(|| {
        let calls = Arc::new(SlotMap::with_shards(1));
        let executions = Arc::new(AtomicUsize::new(0));
        // The leader has started the work and keeps waiting for it.
        let (leader_call, led) = calls.acquire_with(KEY, |_, hash| Call::new(hash));
        assert!(led);
        let work = {
            let (calls, call) = (calls.clone(), leader_call.clone());
            thread::spawn(move || finish(&calls, &call))
        };
        let late = {
            let (calls, executions) = (calls.clone(), executions.clone());
            thread::spawn(move || caller(&calls, &executions))
        };
        work.join().unwrap();
        let late_call = late.join().unwrap();
        // The late caller joined the running call (no new execution) or, after the work retired
        // its entry, led a fresh one.
        let fresh = executions.load(Ordering::SeqCst);
        assert_eq!(fresh, usize::from(!Arc::ptr_eq(&late_call, &leader_call)));
        // The leader goes away last; its work already retired the entry, so nothing is aborted.
        assert!(!calls.release_hashed(leader_call.hash, &leader_call));
        assert!(!leader_call.aborted.load(Ordering::SeqCst));
        assert!(leader_call.finished.load(Ordering::SeqCst));
        assert_eq!(calls.len(), 0);
    });
}

/// The hand-off of inline work, as `Call` does it: the work sits in a mutex; a joiner sets
/// `wants_task`, fences, and moves the work if it can take the lock (`hand_to_task`); the
/// leader puts the work in place under the lock, then fences and moves it if a joiner asked
/// (`started`). The joiner may arrive before the work is in place (it finds none) or while the
/// leader holds the lock (it cannot take it): either way the work must end up moved, or the
/// joiner would wait on a leader that may never be polled again.
#[test]
fn a_joiner_racing_the_leader_putting_its_work_in_place_always_gets_it_moved() {
    use loom::sync::Mutex;
    use loom::sync::atomic::fence;

    struct Inline {
        work: Mutex<Option<u8>>,
        wants_task: AtomicBool,
        moved: AtomicUsize,
    }

    impl Inline {
        fn move_to_task(&self) {
            if let Ok(mut work) = self.work.try_lock()
                && work.take().is_some()
            {
                self.moved.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    loom::model(|| {
        let call = Arc::new(Inline {
            work: Mutex::new(None),
            wants_task: AtomicBool::new(false),
            moved: AtomicUsize::new(0),
        });
        let joiner = {
            let call = call.clone();
            thread::spawn(move || {
                call.wants_task.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                call.move_to_task();
            })
        };
        *call.work.lock().unwrap() = Some(7);
        fence(Ordering::SeqCst);
        if call.wants_task.load(Ordering::Relaxed) {
            call.move_to_task();
        }
        joiner.join().unwrap();
        assert_eq!(
            call.moved.load(Ordering::SeqCst),
            1,
            "the work stayed inline"
        );
    });
}
