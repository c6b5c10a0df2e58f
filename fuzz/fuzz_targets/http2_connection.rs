//! An HTTP/2 connection on whatever a server sends: handshake, frame reader, HPACK decoder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_race::fuzzing::http2_connection;

fuzz_target!(|data: &[u8]| {
    if let Ok(outcomes) = http2_connection(data, 4, false) {
        assert_eq!(outcomes.len(), 4, "one outcome per request");
    }
});
