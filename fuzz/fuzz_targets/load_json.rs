//! Any bytes as a json dataset: the loader never panics, and a dataset
//! that loads evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| common::load_and_run("json", data));
