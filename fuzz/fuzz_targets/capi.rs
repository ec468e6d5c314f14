//! The C API entry points with arbitrary bytes: JSON posts, plain texts and batches whose
//! data and offsets come from the input. Every call returns a status; nothing panics or
//! reads out of bounds; what is returned is freed.
#![no_main]

use std::ffi::c_char;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use shenhe::ffi::*;

struct Handle(*mut shenhe_engine);
// SAFETY: the engine is thread-safe (documented in the header); the handle is never freed.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fuzz_target!(|data: &[u8]| {
    static ENGINE: OnceLock<Handle> = OnceLock::new();
    let engine = ENGINE
        .get_or_init(|| {
            let mut e = std::ptr::null_mut();
            // SAFETY: `e` is valid for a write.
            assert_eq!(unsafe { shenhe_engine_new_bundled(&mut e) }, shenhe_status::SHENHE_OK);
            Handle(e)
        })
        .0;
    // SAFETY: every pointer below is valid for the length passed with it.
    unsafe {
        let mut json: *mut c_char = std::ptr::null_mut();
        if shenhe_scan_json(engine, data.as_ptr(), data.len(), &mut json) == shenhe_status::SHENHE_OK {
            shenhe_string_free(json);
        }
        let mut buf = [0 as c_char; 256];
        let mut len = 0usize;
        let _ = shenhe_scan_json_into(engine, data.as_ptr(), data.len(), buf.as_mut_ptr(), buf.len(), &mut len);
        let (mut action, mut report, mut count) = (shenhe_action::SHENHE_ACTION_ALLOW, false, 0usize);
        let mut hits: *mut shenhe_hits = std::ptr::null_mut();
        if shenhe_scan_text(engine, data.as_ptr(), data.len(), &mut action, &mut report, &mut count, &mut hits)
            == shenhe_status::SHENHE_OK
        {
            assert_eq!(shenhe_hits_count(hits, 0), count);
            for i in 0..count {
                let mut h = std::mem::zeroed::<shenhe_hit>();
                assert_eq!(shenhe_hits_get(hits, 0, i, &mut h), shenhe_status::SHENHE_OK);
                assert!(h.start <= h.end && h.end <= data.len());
            }
            shenhe_hits_free(hits);
        }
        // A batch: the first bytes choose how the rest is cut, offsets possibly wrong.
        let n = (data.first().copied().unwrap_or(0) % 8) as usize;
        let mut offsets = vec![0usize; n + 1];
        for (i, o) in offsets.iter_mut().enumerate().skip(1) {
            let b = data.get(i).copied().unwrap_or(0) as usize;
            *o = (b * data.len() / 255).min(data.len());
        }
        let mut statuses = vec![shenhe_status::SHENHE_OK; n];
        let mut actions = vec![shenhe_action::SHENHE_ACTION_ALLOW; n];
        let mut batch_hits: *mut shenhe_hits = std::ptr::null_mut();
        let s = shenhe_scan_batch(
            engine,
            data.as_ptr(),
            offsets.as_ptr(),
            n,
            actions.as_mut_ptr(),
            std::ptr::null_mut(),
            statuses.as_mut_ptr(),
            &mut batch_hits,
        );
        assert_eq!(s, shenhe_status::SHENHE_OK);
        assert_eq!(shenhe_hits_texts(batch_hits), n);
        shenhe_hits_free(batch_hits);
    }
});
