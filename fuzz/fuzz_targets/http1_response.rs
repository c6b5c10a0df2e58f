//! The HTTP/1.1 response reader on whatever a server sends, cut into reads of any size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_race::fuzzing::http1_response;

fuzz_target!(|data: &[u8]| {
    for head_request in [false, true] {
        if let Ok((status, body)) = http1_response(data, head_request) {
            assert!((100..1000).contains(&status), "status {status}");
            assert!(!head_request || body == 0, "a HEAD response has no body");
        }
    }
});
