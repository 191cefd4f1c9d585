//! The FFI boundary for WinRM (issue 25): the context flags WinRM needs (a context takes them
//! and its channel bindings in `handles`' `step_with`), and MS-WSMV's Kerberos sealing with
//! `gss_wrap_iov` / `gss_unwrap_iov` (MIT's `gssapi/gssapi_ext.h`). Kept apart from the GSS-TSIG
//! functions of `ffi`: its symbols are loaded on first use, into their own table, from the same
//! library (`dlopen` counts the second open of one soname). `unsafe` is allowed here as in
//! `ffi`, each block saying why it is sound.

use std::ffi::c_int;
use std::ptr;

use libloading::Library;

use super::{is_error, BufferDesc, Context, Cred, Handle, LoadError, Name, Status, GSSAPI_LIBRARY};

/// `gss_iov_buffer_desc`: a buffer type (with its flags) and the buffer.
#[repr(C)]
struct IovBuffer {
    kind: Status,
    buffer: BufferDesc,
}

const IOV_DATA: Status = 1;
const IOV_HEADER: Status = 2;
const IOV_PADDING: Status = 9;
/// `GSS_IOV_BUFFER_FLAG_ALLOCATE`: the library allocates the buffer (released by
/// `gss_release_iov_buffer`).
const IOV_ALLOCATE: Status = 0x0001_0000;

type WrapIov = unsafe extern "C" fn(
    *mut Status,
    Handle,
    c_int,
    Status,
    *mut c_int,
    *mut IovBuffer,
    c_int,
) -> Status;
type UnwrapIov = unsafe extern "C" fn(
    *mut Status,
    Handle,
    *mut c_int,
    *mut Status,
    *mut IovBuffer,
    c_int,
) -> Status;
type ReleaseIovBuffer = unsafe extern "C" fn(*mut Status, *mut IovBuffer, c_int) -> Status;

/// The IOV functions, loaded once.
struct IovFns {
    wrap_iov: WrapIov,
    unwrap_iov: UnwrapIov,
    release_iov_buffer: ReleaseIovBuffer,
    /// Kept open while the pointers above are used.
    _gssapi: Library,
}

/// The functions, or why they cannot be loaded; kept as the library's error, whose words a
/// caller shows (it lives as long as the process, so no caller needs a copy).
static IOV: std::sync::OnceLock<Result<IovFns, LoadError>> = std::sync::OnceLock::new();

fn iov_fns() -> Result<&'static IovFns, &'static LoadError> {
    IOV.get_or_init(|| {
        // SAFETY: as in `Gss::open`: MIT's library, already open in this process.
        let lib = unsafe { Library::new(GSSAPI_LIBRARY) }.map_err(LoadError::Open)?;
        Ok(IovFns {
            wrap_iov: symbol!(lib, "gss_wrap_iov"),
            unwrap_iov: symbol!(lib, "gss_unwrap_iov"),
            release_iov_buffer: symbol!(lib, "gss_release_iov_buffer"),
            _gssapi: lib,
        })
    })
    .as_ref()
}

/// Why an IOV call could not be made or failed: the library's statuses, or what it lacks or did.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IovError {
    #[error("GSS-API major status {0:#x}, minor status {1:#x}")]
    Status(Status, Status),
    #[error(transparent)]
    Load(&'static LoadError),
    #[error("it wrapped the message without encrypting it")]
    WrappedUnencrypted,
    #[error("the message it unwrapped was not encrypted")]
    UnwrappedUnencrypted,
}

/// Context flags a WinRM client requests: mutual authentication, replay and sequence
/// detection, confidentiality and integrity (`GSS_C_MUTUAL_FLAG` ... `GSS_C_INTEG_FLAG`), as
/// pyspnego's default for pywinrm and pypsrp.
pub(crate) const WINRM_FLAGS: Status = 2 | 4 | 8 | 16 | 32;
/// `GSS_C_CONF_FLAG` and `GSS_C_INTEG_FLAG`: what sealing needs of an established context.
pub(crate) const SEALING_FLAGS: Status = 16 | 32;

/// Copies a buffer the library filled (not releasing it).
fn copy(b: &BufferDesc) -> Vec<u8> {
    if b.value.is_null() || b.length == 0 {
        Vec::new()
    } else {
        // SAFETY: the library filled the buffer with `length` readable bytes.
        unsafe { std::slice::from_raw_parts(b.value.cast::<u8>(), b.length) }.to_vec()
    }
}

impl<'l> Context<'l> {
    /// Seals `data` in place as MS-WSMV's Kerberos (and SPNEGO) sealing does: `gss_wrap_iov`
    /// with a header, the data, and a padding buffer (empty with AES). Returns the header and
    /// the padding; `data` is then the sealed bytes.
    pub(crate) fn wrap_iov(&self, data: &mut [u8]) -> Result<(Vec<u8>, Vec<u8>), IovError> {
        let fns = iov_fns().map_err(IovError::Load)?;
        let mut iov = [
            IovBuffer {
                kind: IOV_HEADER | IOV_ALLOCATE,
                buffer: BufferDesc::empty(),
            },
            IovBuffer {
                kind: IOV_DATA,
                buffer: BufferDesc {
                    length: data.len(),
                    value: data.as_mut_ptr().cast(),
                },
            },
            IovBuffer {
                kind: IOV_PADDING | IOV_ALLOCATE,
                buffer: BufferDesc::empty(),
            },
        ];
        let mut minor = 0;
        let mut confidential: c_int = 0;
        // SAFETY: the context is live; the data buffer is `data`, writable for its length and
        // encrypted in place; the header and padding are allocated by the library and released
        // below by `gss_release_iov_buffer`, after they are copied.
        let major = unsafe {
            (fns.wrap_iov)(
                &mut minor,
                self.handle,
                1,
                0,
                &mut confidential,
                iov.as_mut_ptr(),
                iov.len() as c_int,
            )
        };
        let (header, padding) = (copy(&iov[0].buffer), copy(&iov[2].buffer));
        let mut release_minor = 0;
        // SAFETY: releases only the buffers the library allocated (flagged ALLOCATED), once.
        unsafe {
            (fns.release_iov_buffer)(&mut release_minor, iov.as_mut_ptr(), iov.len() as c_int)
        };
        if is_error(major) {
            return Err(IovError::Status(major, minor));
        }
        if confidential == 0 {
            // integrity alone would send the envelope readable
            return Err(IovError::WrappedUnencrypted);
        }
        Ok((header, padding))
    }

    /// Unseals `data` in place given its `header` (`gss_unwrap_iov`); `data` is then the
    /// plaintext. Fails when the message was changed, replayed or is not this context's.
    pub(crate) fn unwrap_iov(&self, header: &[u8], data: &mut [u8]) -> Result<(), IovError> {
        let fns = iov_fns().map_err(IovError::Load)?;
        let mut header = header.to_vec();
        let mut iov = [
            IovBuffer {
                kind: IOV_HEADER,
                buffer: BufferDesc {
                    length: header.len(),
                    value: header.as_mut_ptr().cast(),
                },
            },
            IovBuffer {
                kind: IOV_DATA,
                buffer: BufferDesc {
                    length: data.len(),
                    value: data.as_mut_ptr().cast(),
                },
            },
        ];
        let mut minor = 0;
        let mut confidential: c_int = 0;
        // SAFETY: the context is live; both buffers are owned, writable and live for the call
        // (the library decrypts in place and allocates nothing without the ALLOCATE flag).
        let major = unsafe {
            (fns.unwrap_iov)(
                &mut minor,
                self.handle,
                &mut confidential,
                ptr::null_mut(),
                iov.as_mut_ptr(),
                iov.len() as c_int,
            )
        };
        if is_error(major) {
            return Err(IovError::Status(major, minor));
        }
        if confidential == 0 {
            // a message only signed is not what a sealed WinRM body is
            return Err(IovError::UnwrappedUnencrypted);
        }
        Ok(())
    }
}

// SAFETY: a credential, name or context handle of MIT's GSS-API is not tied to the thread that
// made it (MIT krb5 is thread-safe for distinct objects); kmsconf's owners move them between
// threads but never use one from two threads at once (`Send`, not `Sync`).
unsafe impl Send for Context<'_> {}
// SAFETY: as above.
unsafe impl Send for Cred<'_> {}
// SAFETY: as above.
unsafe impl Send for Name<'_> {}
