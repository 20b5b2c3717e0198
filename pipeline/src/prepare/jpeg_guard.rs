//! libjpeg's error handling for [`crate::prepare::jpeg`]: an error manager whose `error_exit`
//! unwinds with the error (libjpeg's default calls `exit`) and whose `emit_message` notes running
//! out of data, and [`guarded`], which runs libjpeg calls and says how they ended.
//!
//! The one place in the crate with `unsafe`: the two callbacks libjpeg calls through C function
//! pointers, and the error manager's initialisation.
#![allow(unsafe_code)] // the workspace denies it; libjpeg's callbacks need it

use std::cell::Cell;
use std::io;
use std::os::raw::c_int;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use mozjpeg_sys as ffi;

thread_local! {
    /// Set when libjpeg asked for bytes past the end of the file (a `JWRN_JPEG_EOF` warning).
    static RAN_OUT: Cell<bool> = const { Cell::new(false) };
}

/// A fatal libjpeg error, carried out of `error_exit` by unwinding: its message code and text.
struct Fatal {
    code: c_int,
    text: String,
}

/// libjpeg's `emit_message`: silent, except that it notes running out of data.
unsafe extern "C-unwind" fn on_message(cinfo: &mut ffi::jpeg_common_struct, level: c_int) {
    // SAFETY: libjpeg calls this with `cinfo.err` pointing at the error manager it was given.
    let code = unsafe { (*cinfo.err).msg_code };
    if level < 0 && code == ffi::JWRN_JPEG_EOF as c_int {
        RAN_OUT.set(true);
    }
}

/// libjpeg's `error_exit`: unwinds (instead of `exit`) with the error's code and text; the
/// decoder's state is dropped on the way out, as Pillow's `longjmp` handler destroys it.
unsafe extern "C-unwind" fn on_error(cinfo: &mut ffi::jpeg_common_struct) {
    // SAFETY: as in `on_message`. `format_message` writes at most JMSG_LENGTH_MAX (200) bytes,
    // NUL included; the buffer holds 256.
    let (code, text) = unsafe {
        let err = &*cinfo.err;
        let mut buf = [0u8; 256];
        if let Some(format) = err.format_message {
            let format: unsafe extern "C-unwind" fn(&mut ffi::jpeg_common_struct, *mut u8) =
                std::mem::transmute(format);
            format(cinfo, buf.as_mut_ptr());
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        (
            err.msg_code,
            String::from_utf8_lossy(&buf[..end]).into_owned(),
        )
    };
    resume_unwind(Box::new(Fatal { code, text }));
}

pub(crate) fn error_manager() -> ffi::jpeg_error_mgr {
    // SAFETY: a zeroed `jpeg_error_mgr` is what `jpeg_std_error` expects to fill in.
    let mut err: ffi::jpeg_error_mgr = unsafe { std::mem::zeroed() };
    unsafe { ffi::jpeg_std_error(&mut err) };
    err.error_exit = Some(on_error);
    err.emit_message = Some(on_message);
    err
}

/// How a libjpeg call ended.
pub(crate) enum Outcome<T> {
    Done(T),
    /// It needed bytes past the end of the file.
    RanOut,
    Failed(String),
}

/// Runs `f` (libjpeg calls) with fatal errors caught: `JWRN_JPEG_EOF` (reading past the end of
/// the data, whatever followed) and `JERR_FILE_READ` (skipping past it) count as running out, as
/// they do in Pillow's suspending source.
pub(crate) fn guarded<T>(f: impl FnOnce() -> io::Result<T>) -> Outcome<T> {
    RAN_OUT.set(false);
    let result = catch_unwind(AssertUnwindSafe(f));
    // Running out comes first: with Pillow's source libjpeg suspends there, before whatever the
    // fake EOI led to here.
    if RAN_OUT.get() {
        return Outcome::RanOut;
    }
    match result {
        Err(payload) => match payload.downcast::<Fatal>() {
            Ok(fatal) if fatal.code == ffi::JERR_FILE_READ as c_int => Outcome::RanOut,
            Ok(fatal) => Outcome::Failed(fatal.text),
            // A panic in the binding rather than a libjpeg error: still one file's failure, never
            // the run's.
            Err(other) => Outcome::Failed(format!(
                "the JPEG decoder panicked: {}",
                other
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| other.downcast_ref::<&str>().copied())
                    .unwrap_or("no message")
            )),
        },
        Ok(Ok(v)) => Outcome::Done(v),
        Ok(Err(e)) => Outcome::Failed(e.to_string()),
    }
}
