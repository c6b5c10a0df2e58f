//! `--expect CODE=COUNT`, `-H NAME: VALUE` and `--sync MODE` as a user may type them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_race::{Expectation, Header, SyncMode};

fuzz_target!(|text: &str| {
    if let Ok(expect) = text.parse::<Expectation>() {
        let again: Expectation = expect.to_string().parse().expect("its own form parses");
        assert_eq!(again, expect);
        assert!(expect.observe([100, 201, 409, 599]) <= 4);
    }
    if let Ok(header) = text.parse::<Header>() {
        let again: Header = format!("{}: {}", header.name, header.value)
            .parse()
            .expect("its own form parses");
        assert_eq!(again, header);
    }
    if let Ok(sync) = text.parse::<SyncMode>() {
        assert_eq!(sync.as_str(), text);
    }
});
