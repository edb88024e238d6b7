//! Header lookup and CRLF normalisation on arbitrary message bytes (both run on mail from
//! the network before it is stored).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lifeboat_mailstore::deliver::{header_value, to_crlf};

fuzz_target!(|input: &[u8]| {
    let normalised = to_crlf(input);
    // Every LF is now preceded by CR.
    for (i, &b) in normalised.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && normalised[i - 1] == b'\r');
        }
    }
    let _ = header_value(&normalised, "Message-ID");
    let _ = header_value(input, "X-Lifeboat-ID");
});
