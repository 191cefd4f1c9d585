//! The owning wrappers of what the library allocates: an imported name, initiator credentials
//! and a security context (its establishment, with GSS-TSIG's flags or the caller's and channel
//! bindings, and MICs), each released or deleted when dropped. `unsafe` is allowed here as in
//! `ffi`, each block saying why it is sound.

use std::ffi::CString;
use std::ptr;

use super::{
    is_error, BufferDesc, Gss, Handle, KeyValue, KeyValueSet, OidDesc, Status, GSS_C_INITIATE,
    KRB5_PRINCIPAL_NAME,
};

/// An imported name, released when dropped.
pub(crate) struct Name<'l> {
    pub(super) lib: &'l Gss,
    pub(super) handle: Handle,
}

impl<'l> Name<'l> {
    /// `text` as a Kerberos principal name (`user@REALM`, `DNS/host`; no realm = the default).
    pub(crate) fn principal(lib: &'l Gss, text: &str) -> Result<Self, (Status, Status)> {
        let mut minor = 0;
        let mut handle: Handle = ptr::null_mut();
        let mut buffer = BufferDesc::borrowing(text.as_bytes());
        let mut oid = OidDesc {
            length: KRB5_PRINCIPAL_NAME.len() as u32,
            elements: KRB5_PRINCIPAL_NAME.as_ptr().cast_mut().cast(),
        };
        // SAFETY: the buffer and OID point at live, unmodified bytes the library only reads;
        // `handle` receives a name this wrapper releases.
        let major = unsafe { (lib.import_name)(&mut minor, &mut buffer, &mut oid, &mut handle) };
        if is_error(major) {
            return Err((major, minor));
        }
        Ok(Self { lib, handle })
    }

    /// The name as the library shows it (a principal with its realm).
    pub(crate) fn display(&self) -> Option<String> {
        let mut minor = 0;
        let mut text = BufferDesc::empty();
        // SAFETY: `handle` is a live name; the output buffer is released by `take`.
        let major =
            unsafe { (self.lib.display_name)(&mut minor, self.handle, &mut text, ptr::null_mut()) };
        (!is_error(major)).then(|| String::from_utf8_lossy(&self.lib.take(text)).into_owned())
    }
}

impl Drop for Name<'_> {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: the name is live and released once.
        unsafe { (self.lib.release_name)(&mut minor, &mut self.handle) };
    }
}

/// Initiator credentials, released when dropped.
pub(crate) struct Cred<'l> {
    pub(super) lib: &'l Gss,
    pub(super) handle: Handle,
}

impl<'l> Cred<'l> {
    /// Initiator credentials of `name` (`None`: the cache's default principal) from the
    /// credential store `store` (`client_keytab`, `ccache`, ...; empty: the default cache).
    pub(crate) fn acquire(
        lib: &'l Gss,
        name: Option<&Name<'l>>,
        store: &[(&str, &str)],
    ) -> Result<Self, (Status, Status)> {
        let owned: Vec<(CString, CString)> = store
            .iter()
            .filter_map(|(k, v)| Some((CString::new(*k).ok()?, CString::new(*v).ok()?)))
            .collect();
        let elements: Vec<KeyValue> = owned
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.as_ptr(),
                value: v.as_ptr(),
            })
            .collect();
        let set = KeyValueSet {
            count: elements.len() as u32,
            elements: elements.as_ptr(),
        };
        let mut minor = 0;
        let mut handle: Handle = ptr::null_mut();
        // SAFETY: the name is live or null (GSS_C_NO_NAME); `set` and the C strings it points at
        // outlive the call; null mechanism set and outputs mean defaults / not wanted.
        let major = unsafe {
            (lib.acquire_cred_from)(
                &mut minor,
                name.map_or(ptr::null_mut(), |n| n.handle),
                0,
                ptr::null_mut(),
                GSS_C_INITIATE,
                &set,
                &mut handle,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err((major, minor));
        }
        Ok(Self { lib, handle })
    }

    /// The principal the credentials are for, and their remaining lifetime in seconds.
    pub(crate) fn inquire(&self) -> Result<(String, u32), (Status, Status)> {
        let mut minor = 0;
        let mut name: Handle = ptr::null_mut();
        let mut lifetime: Status = 0;
        // SAFETY: `handle` is live; the name received is wrapped and so released.
        let major = unsafe {
            (self.lib.inquire_cred)(
                &mut minor,
                self.handle,
                &mut name,
                &mut lifetime,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err((major, minor));
        }
        let name = Name {
            lib: self.lib,
            handle: name,
        };
        Ok((name.display().unwrap_or_default(), lifetime))
    }
}

impl Drop for Cred<'_> {
    fn drop(&mut self) {
        let mut minor = 0;
        // SAFETY: the credential is live and released once.
        unsafe { (self.lib.release_cred)(&mut minor, &mut self.handle) };
    }
}

/// `gss_channel_bindings_struct` (RFC 2744 section 3.11).
#[repr(C)]
struct ChannelBindingsDesc {
    initiator_addrtype: Status,
    initiator_address: BufferDesc,
    acceptor_addrtype: Status,
    acceptor_address: BufferDesc,
    application_data: BufferDesc,
}

/// A security context being established or established, deleted when dropped.
pub(crate) struct Context<'l> {
    pub(super) lib: &'l Gss,
    pub(super) handle: Handle,
}

/// Context flags requested: mutual authentication (the server proves itself too), replay
/// detection and integrity (MICs), as `nsupdate -g` asks.
const REQUEST_FLAGS: Status = 2 | 4 | 32;

impl<'l> Context<'l> {
    pub(crate) fn new(lib: &'l Gss) -> Self {
        Self {
            lib,
            handle: ptr::null_mut(),
        }
    }

    /// One call of `gss_init_sec_context` with mechanism `mech` (DER contents of its OID), the
    /// flags GSS-TSIG asks for and no channel bindings: the major status and the token to send.
    pub(crate) fn step(
        &mut self,
        cred: &Cred<'l>,
        target: &Name<'l>,
        mech: &'static [u8],
        input: Option<&[u8]>,
    ) -> Result<(Status, Vec<u8>), (Status, Status)> {
        self.step_with(cred, target, mech, input, (REQUEST_FLAGS, None))
            .map(|(major, token, _)| (major, token))
    }

    /// One call of `gss_init_sec_context` with `flags` and, when given, channel bindings whose
    /// application data is `bindings` (addresses unspecified, as RFC 5929's bindings are sent):
    /// the major status, the token to send, and the flags the context has.
    pub(crate) fn step_with(
        &mut self,
        cred: &Cred<'l>,
        target: &Name<'l>,
        mech: &'static [u8],
        input: Option<&[u8]>,
        (flags, bindings): (Status, Option<&[u8]>),
    ) -> Result<(Status, Vec<u8>, Status), (Status, Status)> {
        let mut minor = 0;
        let mut mech = OidDesc {
            length: mech.len() as u32,
            elements: mech.as_ptr().cast_mut().cast(),
        };
        let mut input = input.map(BufferDesc::borrowing);
        let mut channel = bindings.map(|data| ChannelBindingsDesc {
            initiator_addrtype: 0,
            initiator_address: BufferDesc::empty(),
            acceptor_addrtype: 0,
            acceptor_address: BufferDesc::empty(),
            application_data: BufferDesc::borrowing(data),
        });
        let mut output = BufferDesc::empty();
        let mut granted: Status = 0;
        // SAFETY: cred, context and name handles are live (the context starts null, as the
        // first call requires); the input buffer and the bindings, when given, borrow live bytes
        // the library only reads; the output is released by `take`; `granted` is a live local;
        // null bindings, input and optional outputs are allowed.
        let major = unsafe {
            (self.lib.init_sec_context)(
                &mut minor,
                cred.handle,
                &mut self.handle,
                target.handle,
                &mut mech,
                flags,
                0,
                channel
                    .as_mut()
                    .map_or(ptr::null_mut(), |c| (c as *mut ChannelBindingsDesc).cast()),
                input
                    .as_mut()
                    .map_or(ptr::null_mut(), |b| b as *mut BufferDesc),
                ptr::null_mut(),
                &mut output,
                &mut granted,
                ptr::null_mut(),
            )
        };
        let token = self.lib.take(output);
        if is_error(major) {
            return Err((major, minor));
        }
        Ok((major, token, granted))
    }

    /// `gss_get_mic` of `data` with the default quality of protection.
    pub(crate) fn get_mic(&self, data: &[u8]) -> Result<Vec<u8>, (Status, Status)> {
        let mut minor = 0;
        let mut message = BufferDesc::borrowing(data);
        let mut token = BufferDesc::empty();
        // SAFETY: the context is live; the message borrows live bytes; the token is released
        // by `take`.
        let major =
            unsafe { (self.lib.get_mic)(&mut minor, self.handle, 0, &mut message, &mut token) };
        let token = self.lib.take(token);
        if is_error(major) {
            return Err((major, minor));
        }
        Ok(token)
    }

    /// `gss_verify_mic` of `data` against `mic`.
    pub(crate) fn verify_mic(&self, data: &[u8], mic: &[u8]) -> Result<(), (Status, Status)> {
        let mut minor = 0;
        let mut message = BufferDesc::borrowing(data);
        let mut token = BufferDesc::borrowing(mic);
        // SAFETY: the context is live; both buffers borrow live bytes the library only reads.
        let major = unsafe {
            (self.lib.verify_mic)(
                &mut minor,
                self.handle,
                &mut message,
                &mut token,
                ptr::null_mut(),
            )
        };
        if is_error(major) {
            return Err((major, minor));
        }
        Ok(())
    }
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        if self.handle.is_null() {
            return;
        }
        let mut minor = 0;
        // SAFETY: the context is live and deleted once; no output token is asked for.
        unsafe { (self.lib.delete_sec_context)(&mut minor, &mut self.handle, ptr::null_mut()) };
    }
}
