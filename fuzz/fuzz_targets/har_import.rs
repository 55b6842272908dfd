//! `POST /records` and `handoffrail evaluate --records`: HAR 1.2 or native JSON / JSON lines. Any text is
//! either refused or turned into records that redact, seal and verify.
#![no_main]

use handoffrail::records::import::{parse_text, Importer};
use handoffrail::records::signing::{Keyring, RecordKey};
use handoffrail::rules::{Redaction, Rules, TrustList};
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;

static KEY: LazyLock<RecordKey> = LazyLock::new(RecordKey::generate);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(incoming) = parse_text(text, "default") else {
        return;
    };
    let keyring = Keyring::of(&KEY);
    let importer = Importer {
        tenant: "default",
        redaction: &Redaction::default(),
        trust: &TrustList::new(&Rules::default(), &[]),
        keyring: &keyring,
        key: &KEY,
        keep_foreign_ids: false,
    };
    for sealed in importer.prepare(incoming) {
        let _ = KEY.verify(&sealed);
    }
});
