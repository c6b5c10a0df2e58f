//! Placeholder templates (`{{i}}`, `{{trial_uuid}}`, ...) and the URL parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_race::fuzzing::template;

fuzz_target!(|data: &[u8]| {
    let rendered = template(data);
    if !data.windows(2).any(|w| w == b"{{") {
        assert_eq!(rendered, data, "text without placeholders renders as it is");
    }
});
