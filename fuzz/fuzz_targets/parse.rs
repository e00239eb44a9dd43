//! Any bytes: the parser, syntax-error recovery and the static checks never
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = bangfu::source::SourceText::new("f.bangfu", std::sync::Arc::new(data.to_vec()));
    let _ = bangfu::syntax::recover::syntax_errors(&src);
    if let Ok(text) = std::str::from_utf8(data) {
        let files = [bangfu::PolicyFile::new("f.bangfu", text)];
        let options = bangfu::analyze::Options { bundled_schema_fallback: true };
        let _ = bangfu::analyze::analyze(&files, &[], options);
    }
});
