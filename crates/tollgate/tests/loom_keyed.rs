//! loom models of the per-key slot bookkeeping behind `keyed::Mutex` (and `flight`): every
//! interleaving of the real `SlotMap` code (its shard locks are loom's under
//! `cfg(tollgate_loom)`). Run with:
//! `RUSTFLAGS="--cfg tollgate_loom" cargo test -p tollgate --release --test loom_keyed`
#![cfg(tollgate_loom)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loom::thread;
use tollgate::keyed::slots::SlotMap;

/// A slot that knows whether it was retired; nobody may use it afterwards.
#[derive(Debug, Default)]
struct Slot {
    retired: loom::sync::atomic::AtomicBool,
}

/// One user of `key`: acquire, check the slot is live while using it, release.
fn use_key(map: &SlotMap<u8, Slot>, key: u8, created: &AtomicUsize) {
    let (slot, made) = map.acquire(key, Slot::default);
    created.fetch_add(usize::from(made), Ordering::SeqCst);
    assert!(
        !slot.retired.load(loom::sync::atomic::Ordering::SeqCst),
        "used after removal"
    );
    thread::yield_now();
    assert!(
        !slot.retired.load(loom::sync::atomic::Ordering::SeqCst),
        "removed while in use"
    );
    if map.release(&key, &slot) {
        slot.retired
            .store(true, loom::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn concurrent_users_of_one_key_never_see_a_removed_slot_and_leave_nothing() {
    loom::model(|| {
        let map = Arc::new(SlotMap::with_shards(1));
        let created = Arc::new(AtomicUsize::new(0));
        let users: Vec<_> = (0..2)
            .map(|_| {
                let (map, created) = (map.clone(), created.clone());
                thread::spawn(move || use_key(&map, 7, &created))
            })
            .collect();
        use_key(&map, 7, &created);
        for user in users {
            user.join().unwrap();
        }
        assert_eq!(map.len(), 0, "per-key state outlived its users");
        let made = created.load(Ordering::SeqCst);
        assert!((1..=3).contains(&made));
    });
}

#[test]
fn keys_sharing_a_shard_are_cleaned_independently() {
    loom::model(|| {
        let map = Arc::new(SlotMap::with_shards(1));
        let created = Arc::new(AtomicUsize::new(0));
        let other = {
            let (map, created) = (map.clone(), created.clone());
            thread::spawn(move || use_key(&map, 1, &created))
        };
        use_key(&map, 2, &created);
        other.join().unwrap();
        assert_eq!(created.load(Ordering::SeqCst), 2);
        assert_eq!(map.len(), 0);
    });
}
