//! A rules file (`--rules`, reloaded on SIGHUP): any text parses or is refused; parsed rules match URLs.
#![no_main]

use handoffrail::rules::Rules;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(rules) = Rules::parse(&[("fuzz.toml".to_string(), text.to_string())]) else {
        return;
    };
    for pattern in &rules.trusted {
        let _ = pattern.matches("GET", "https://api.example.com/v1/orders/7?x=1");
    }
});
