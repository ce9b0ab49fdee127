#![no_main]
//! Any bytes as a policy document: parsing never panics; a policy that parses evaluates any
//! request without panicking.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    argus_shared::fuzzing::policy_parser(data);
});
