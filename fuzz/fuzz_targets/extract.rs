#![no_main]
//! The answer-extraction steps on arbitrary text.

use distill_gate::score::extract::{
    Extract, choice_letter, first_code_block, first_json_object, first_line, last_number, numbers,
};
use distill_gate::score::numeric::parse_number;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = numbers(text);
    if let Some(n) = last_number(text) {
        let _ = parse_number(n);
    }
    let _ = parse_number(text);
    let _ = first_line(text);
    for options in [0, 1, 4, 26, 100] {
        let _ = choice_letter(text, options);
    }
    let _ = first_code_block(text, None);
    let _ = first_code_block(text, Some("python"));
    if let Some(obj) = first_json_object(text) {
        assert!(serde_json::from_str::<serde_json::Value>(obj).is_ok());
    }
    let _ = distill_gate::score::code::extract_code(text);
    for step in [
        Extract::None,
        Extract::LastNumber,
        Extract::ChoiceLetter,
        Extract::FirstCodeBlock { lang: None },
        Extract::FirstJsonObject,
        Extract::FirstLine,
        Extract::Regex {
            pattern: r"answer:\s*(\S+)".into(),
            group: 1,
        },
    ] {
        let _ = step.apply(text);
    }
});
