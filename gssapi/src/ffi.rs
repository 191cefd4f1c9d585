//! The FFI boundary: MIT's `libgssapi_krb5.so.2` (and, for one message, `libkrb5.so.3`) opened
//! with `libloading`, their C types, and owning wrappers that release what the library
//! allocates. Everything above this module is safe Rust.
//!
//! This is the only module of kmsconf that may use `unsafe` (the workspace forbids it, this
//! crate denies it): loading a C library and calling it cannot be done otherwise. Each `unsafe`
//! block says why it is sound. The C declarations follow MIT krb5's `gssapi/gssapi.h`
//! (RFC 2744's C bindings) and `gssapi/gssapi_ext.h` (`gss_acquire_cred_from`), for LP64 Linux.
//!
//! Here: the C types, the loaded function table and its errors, status descriptions, the default
//! cache's name and SASL's `gss_wrap` / `gss_unwrap`; in `handles` the owning wrappers (names,
//! credentials, contexts), in `iov` WinRM's flags, channel bindings and sealing.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;

use libloading::Library;

/// `OM_uint32`, the type of every GSS-API status.
pub(crate) type Status = u32;

#[repr(C)]
struct BufferDesc {
    length: usize,
    value: *mut c_void,
}

impl BufferDesc {
    fn empty() -> Self {
        Self {
            length: 0,
            value: ptr::null_mut(),
        }
    }

    /// A descriptor of `bytes` for the library to read (never to write or free).
    fn borrowing(bytes: &[u8]) -> Self {
        Self {
            length: bytes.len(),
            value: bytes.as_ptr().cast_mut().cast(),
        }
    }
}

#[repr(C)]
struct OidDesc {
    length: u32,
    elements: *mut c_void,
}

#[repr(C)]
struct KeyValue {
    key: *const c_char,
    value: *const c_char,
}

#[repr(C)]
struct KeyValueSet {
    count: u32,
    elements: *const KeyValue,
}

type Handle = *mut c_void;

/// DER contents of the OIDs kmsconf names: `GSS_KRB5_NT_PRINCIPAL_NAME` (1.2.840.113554.1.2.2.1),
/// SPNEGO (1.3.6.1.5.5.2), the mechanism Windows, Samba and `nsupdate -g` negotiate, and
/// Kerberos itself (1.2.840.113554.1.2.2).
pub(crate) const KRB5_PRINCIPAL_NAME: &[u8] =
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02, 0x01];
pub(crate) const SPNEGO: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
pub(crate) const KRB5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];

const GSS_C_INITIATE: c_int = 1;
const GSS_C_GSS_CODE: c_int = 1;
const GSS_C_MECH_CODE: c_int = 2;
/// `GSS_S_CONTINUE_NEEDED`: a context needs another token from the server.
pub(crate) const CONTINUE_NEEDED: Status = 1;
/// The calling and routine error bits of a major status (the rest are supplementary info).
const ERROR_MASK: Status = 0xffff_0000;

pub(crate) fn is_error(major: Status) -> bool {
    major & ERROR_MASK != 0
}

type ImportName =
    unsafe extern "C" fn(*mut Status, *mut BufferDesc, *mut OidDesc, *mut Handle) -> Status;
type DisplayName =
    unsafe extern "C" fn(*mut Status, Handle, *mut BufferDesc, *mut *mut OidDesc) -> Status;
type ReleaseHandle = unsafe extern "C" fn(*mut Status, *mut Handle) -> Status;
type AcquireCredFrom = unsafe extern "C" fn(
    *mut Status,
    Handle,
    Status,
    *mut c_void,
    c_int,
    *const KeyValueSet,
    *mut Handle,
    *mut *mut c_void,
    *mut Status,
) -> Status;
type InquireCred = unsafe extern "C" fn(
    *mut Status,
    Handle,
    *mut Handle,
    *mut Status,
    *mut c_int,
    *mut *mut c_void,
) -> Status;
type InitSecContext = unsafe extern "C" fn(
    *mut Status,
    Handle,
    *mut Handle,
    Handle,
    *mut OidDesc,
    Status,
    Status,
    *mut c_void,
    *mut BufferDesc,
    *mut *mut OidDesc,
    *mut BufferDesc,
    *mut Status,
    *mut Status,
) -> Status;
type GetMic =
    unsafe extern "C" fn(*mut Status, Handle, Status, *mut BufferDesc, *mut BufferDesc) -> Status;
type VerifyMic = unsafe extern "C" fn(
    *mut Status,
    Handle,
    *mut BufferDesc,
    *mut BufferDesc,
    *mut Status,
) -> Status;
type DeleteSecContext = unsafe extern "C" fn(*mut Status, *mut Handle, *mut BufferDesc) -> Status;
type ReleaseBuffer = unsafe extern "C" fn(*mut Status, *mut BufferDesc) -> Status;
type DisplayStatus = unsafe extern "C" fn(
    *mut Status,
    Status,
    c_int,
    *mut OidDesc,
    *mut Status,
    *mut BufferDesc,
) -> Status;
type Krb5InitContext = unsafe extern "C" fn(*mut Handle) -> i32;
type Krb5CcDefaultName = unsafe extern "C" fn(Handle) -> *const c_char;
type Krb5FreeContext = unsafe extern "C" fn(Handle);

/// MIT GSS-API, loaded: the library and the functions kmsconf calls.
pub(crate) struct Gss {
    import_name: ImportName,
    display_name: DisplayName,
    release_name: ReleaseHandle,
    acquire_cred_from: AcquireCredFrom,
    inquire_cred: InquireCred,
    release_cred: ReleaseHandle,
    init_sec_context: InitSecContext,
    get_mic: GetMic,
    verify_mic: VerifyMic,
    delete_sec_context: DeleteSecContext,
    release_buffer: ReleaseBuffer,
    display_status: DisplayStatus,
    /// Kept open for as long as the function pointers above are used: they point into it.
    _gssapi: Library,
}

/// The file names tried, MIT's stable sonames.
pub(crate) const GSSAPI_LIBRARY: &str = "libgssapi_krb5.so.2";
const KRB5_LIBRARY: &str = "libkrb5.so.3";

/// Why the library cannot be used: it does not open, or lacks a function kmsconf calls.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    #[error("{0}")]
    Open(libloading::Error),
    #[error("`{GSSAPI_LIBRARY}` lacks `{symbol}`: {source}")]
    Symbol {
        symbol: &'static str,
        source: libloading::Error,
    },
}

macro_rules! symbol {
    ($lib:expr, $name:literal) => {
        // SAFETY: the symbol is a function of MIT's GSS-API whose C prototype the type alias of
        // the field it is stored in declares (gssapi.h); the pointer is only called while the
        // library is open, as `Gss` keeps it.
        *unsafe { $lib.get(concat!($name, "\0").as_bytes()) }.map_err(|source| {
            LoadError::Symbol {
                symbol: $name,
                source,
            }
        })?
    };
}

impl Gss {
    pub(crate) fn open() -> Result<Self, LoadError> {
        // SAFETY: loading MIT krb5's GSS-API library runs its initialisers, which have no
        // preconditions; it is a system library built for this purpose.
        let lib = unsafe { Library::new(GSSAPI_LIBRARY) }.map_err(LoadError::Open)?;
        Ok(Self {
            import_name: symbol!(lib, "gss_import_name"),
            display_name: symbol!(lib, "gss_display_name"),
            release_name: symbol!(lib, "gss_release_name"),
            acquire_cred_from: symbol!(lib, "gss_acquire_cred_from"),
            inquire_cred: symbol!(lib, "gss_inquire_cred"),
            release_cred: symbol!(lib, "gss_release_cred"),
            init_sec_context: symbol!(lib, "gss_init_sec_context"),
            get_mic: symbol!(lib, "gss_get_mic"),
            verify_mic: symbol!(lib, "gss_verify_mic"),
            delete_sec_context: symbol!(lib, "gss_delete_sec_context"),
            release_buffer: symbol!(lib, "gss_release_buffer"),
            display_status: symbol!(lib, "gss_display_status"),
            _gssapi: lib,
        })
    }

    /// Copies a buffer the library allocated, then releases it.
    fn take(&self, mut buffer: BufferDesc) -> Vec<u8> {
        let bytes = if buffer.value.is_null() || buffer.length == 0 {
            Vec::new()
        } else {
            // SAFETY: the library filled `buffer` with `length` readable bytes at `value`.
            unsafe { std::slice::from_raw_parts(buffer.value.cast::<u8>(), buffer.length) }.to_vec()
        };
        let mut minor = 0;
        // SAFETY: `buffer` was allocated by this library and is released exactly once.
        unsafe { (self.release_buffer)(&mut minor, &mut buffer) };
        bytes
    }

    /// The library's words for a status: the major status's, then the mechanism's minor one.
    pub(crate) fn describe(&self, major: Status, minor: Status) -> String {
        let mut parts = Vec::new();
        for (value, kind) in [(major, GSS_C_GSS_CODE), (minor, GSS_C_MECH_CODE)] {
            if kind == GSS_C_MECH_CODE && value == 0 {
                continue;
            }
            let mut context: Status = 0;
            loop {
                let mut minor_out = 0;
                let mut text = BufferDesc::empty();
                // SAFETY: all pointers are to live locals; a null mechanism means the default.
                let status = unsafe {
                    (self.display_status)(
                        &mut minor_out,
                        value,
                        kind,
                        ptr::null_mut(),
                        &mut context,
                        &mut text,
                    )
                };
                if is_error(status) {
                    break;
                }
                let text = String::from_utf8_lossy(&self.take(text)).into_owned();
                // MIT words a zero minor status "Success"; it adds nothing to a failure
                if !text.is_empty() && text != "Success" && !parts.contains(&text) {
                    parts.push(text);
                }
                if context == 0 {
                    break;
                }
            }
        }
        parts.join(": ")
    }
}

/// The name of the default credential cache (`KRB5CCNAME`, else krb5.conf's
/// `default_ccache_name`, else MIT's built-in default), for messages; `None` if libkrb5 cannot
/// say.
pub(crate) fn default_ccache_name() -> Option<String> {
    // SAFETY: as for the GSS-API library: MIT's libkrb5 (which that library links to) is a
    // system library whose initialisers have no preconditions.
    let lib = unsafe { Library::new(KRB5_LIBRARY) }.ok()?;
    // SAFETY: the three symbols have these prototypes in MIT's krb5.h; they are used only
    // while `lib` is open.
    let (init, name, free) = unsafe {
        (
            *lib.get::<Krb5InitContext>(b"krb5_init_context\0").ok()?,
            *lib.get::<Krb5CcDefaultName>(b"krb5_cc_default_name\0")
                .ok()?,
            *lib.get::<Krb5FreeContext>(b"krb5_free_context\0").ok()?,
        )
    };
    let mut context: Handle = ptr::null_mut();
    // SAFETY: `context` receives a new krb5 context, freed below.
    if unsafe { init(&mut context) } != 0 {
        return None;
    }
    // SAFETY: `context` is live; the returned string is owned by the context and copied before
    // the context is freed.
    let text = unsafe {
        let p = name(context);
        (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
    };
    // SAFETY: the context is freed once, after its last use.
    unsafe { free(context) };
    text
}

// Names, credentials and contexts, released when dropped.
mod handles;
pub(crate) use handles::{Context, Cred, Name};

// WinRM (issue 25): flags, channel bindings and IOV sealing, in a module of their own.
mod iov;
pub(crate) use iov::{IovError, SEALING_FLAGS, WINRM_FLAGS};

// ---- SASL security layer (adba27): gss_wrap / gss_unwrap -------------------------------------
// Kept apart from `Gss` (loaded on demand, from the same library) so that a build without LDAP
// use never resolves these symbols, and so this block merges alone.

type Wrap = unsafe extern "C" fn(
    *mut Status,
    Handle,
    c_int,
    Status,
    *mut BufferDesc,
    *mut c_int,
    *mut BufferDesc,
) -> Status;
type Unwrap = unsafe extern "C" fn(
    *mut Status,
    Handle,
    *mut BufferDesc,
    *mut BufferDesc,
    *mut c_int,
    *mut Status,
) -> Status;

/// `gss_wrap` and `gss_unwrap`, resolved from a second handle on the GSS-API library.
pub(crate) struct Wrapping {
    wrap: Wrap,
    unwrap: Unwrap,
    /// Kept open for as long as the function pointers above are used: they point into it.
    _gssapi: Library,
}

impl Wrapping {
    pub(crate) fn open() -> Result<Self, LoadError> {
        // SAFETY: as in `Gss::open`: the same system library, already loaded by then.
        let lib = unsafe { Library::new(GSSAPI_LIBRARY) }.map_err(LoadError::Open)?;
        Ok(Self {
            wrap: symbol!(lib, "gss_wrap"),
            unwrap: symbol!(lib, "gss_unwrap"),
            _gssapi: lib,
        })
    }
}

impl Context<'_> {
    /// `gss_wrap` of `data`, integrity only (`conf_req_flag` 0), default quality of protection.
    pub(crate) fn wrap(&self, w: &Wrapping, data: &[u8]) -> Result<Vec<u8>, (Status, Status)> {
        let mut minor = 0;
        let mut input = BufferDesc::borrowing(data);
        let mut output = BufferDesc::empty();
        let mut conf_state: c_int = 0;
        // SAFETY: the context is established and live; the input borrows live bytes the library
        // only reads; the output is released by `take`.
        let major = unsafe {
            (w.wrap)(
                &mut minor,
                self.handle,
                0,
                0,
                &mut input,
                &mut conf_state,
                &mut output,
            )
        };
        let token = self.lib.take(output);
        if is_error(major) {
            return Err((major, minor));
        }
        Ok(token)
    }

    /// `gss_unwrap` of `token`: the message, once its integrity checks out.
    pub(crate) fn unwrap(&self, w: &Wrapping, token: &[u8]) -> Result<Vec<u8>, (Status, Status)> {
        let mut minor = 0;
        let mut input = BufferDesc::borrowing(token);
        let mut output = BufferDesc::empty();
        // SAFETY: as in `wrap`; the confidentiality and QOP outputs may be null.
        let major = unsafe {
            (w.unwrap)(
                &mut minor,
                self.handle,
                &mut input,
                &mut output,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        let message = self.lib.take(output);
        if is_error(major) {
            return Err((major, minor));
        }
        Ok(message)
    }
}
