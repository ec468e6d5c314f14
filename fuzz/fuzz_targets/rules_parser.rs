//! Arbitrary bytes as a rule file: loading must return a rule set or an error with a
//! location, never panic; a rule set that loads must compile and scan its own examples.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match shenhe::RuleSet::from_toml_str(text) {
        Ok(rules) => {
            if let Ok(engine) = shenhe::Engine::new(&rules) {
                let _ = engine.check_examples();
            }
        }
        Err(e) => {
            // Every load error of a single text names a place in it.
            assert!(e.location().is_some(), "error without a location: {e}");
        }
    }
});
