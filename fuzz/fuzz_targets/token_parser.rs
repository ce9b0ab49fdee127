#![no_main]
//! Any string as a bearer token: verification never panics, and nothing but a token signed by the
//! key in the set verifies.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    argus_shared::fuzzing::token_parser(data);
});
