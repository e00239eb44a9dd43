//! Text that parses: `fmt` is idempotent, keeps the AST up to spans and
//! keeps every comment.
#![no_main]

use bangfu::fmt::{comments, format_str, normalize};
use libfuzzer_sys::fuzz_target;

fn comment_texts(text: &str) -> Vec<String> {
    let src = bangfu::source::SourceText::from_string("f", text);
    match bangfu::syntax::parse_file(&src) {
        Ok(mut pairs) => pairs
            .next()
            .map(|file| comments::all_comment_texts(text, file))
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

fuzz_target!(|text: &str| {
    let Ok(formatted) = format_str(text) else {
        return;
    };
    let again = format_str(&formatted).expect("fmt output parses");
    assert_eq!(again, formatted, "fmt is not idempotent");
    assert_eq!(
        normalize::shape_of(&formatted).ok(),
        normalize::shape_of(text).ok(),
        "fmt changed the AST"
    );
    assert_eq!(comment_texts(&formatted), comment_texts(text), "fmt lost a comment");
});
