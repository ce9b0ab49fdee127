#![no_main]
//! Any request target: canonicalization never panics, and what it accepts is stable (accepting
//! the canonical form again gives the same result) and routes without panicking.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    argus_shared::fuzzing::path_canonicalize(data);
});
