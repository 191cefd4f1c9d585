//! Contexts against an in-process sspi NTLM acceptor: authentication and sealing both ways,
//! channel bindings, a wrong password, and Negotiate offering SPNEGO without a KDC.

use super::*;

/// An sspi NTLM server accepting `user`/`password`: the other side of a context, in-process.
struct Server {
    ntlm: Ntlm,
    handle: Option<sspi::AuthIdentityBuffers>,
}

impl Server {
    fn new(user: &str, password: &str) -> Self {
        let identity = AuthIdentity {
            username: Username::parse(user).expect("user"),
            password: password.to_string().into(),
        };
        let mut ntlm = Ntlm::new();
        let handle = ntlm
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Inbound)
            .with_auth_data(&identity)
            .execute(&mut ntlm)
            .expect("server credentials")
            .credentials_handle;
        Self { ntlm, handle }
    }

    fn accept(&mut self, token: &[u8]) -> sspi::Result<(Vec<u8>, SecurityStatus)> {
        self.accept_bound(token, None)
    }

    /// Accepts `token`, checking channel bindings with application data `bindings`.
    fn accept_bound(
        &mut self,
        token: &[u8],
        bindings: Option<&[u8]>,
    ) -> sspi::Result<(Vec<u8>, SecurityStatus)> {
        let mut input = vec![SecurityBuffer::new(token.to_vec(), BufferType::Token)];
        if let Some(data) = bindings {
            input.push(SecurityBuffer::new(
                sec_channel_bindings(data),
                BufferType::ChannelBindings,
            ));
        }
        let mut output = vec![SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = self
            .ntlm
            .accept_security_context()
            .with_credentials_handle(&mut self.handle)
            .with_context_requirements(sspi::ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        let result = self
            .ntlm
            .accept_security_context_impl(builder)?
            .resolve_to_result()?;
        if matches!(
            result.status,
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
        ) {
            self.ntlm.complete_auth_token(&mut output)?;
        }
        Ok((output.remove(0).buffer, result.status))
    }
}

fn password_of(user: &str, password: Secret) -> Credential {
    Credential::Password {
        user: user.into(),
        password,
    }
}

#[test]
fn ntlm_authenticates_and_seals_both_ways() {
    let password = Secret::new("Passw0rd!");
    let mut client = Context::new(
        Mechanism::Ntlm,
        &password_of("CORP\\admin", password),
        "HTTP/kms01",
        None,
        Duration::from_secs(5),
    )
    .expect("client");
    let mut server = Server::new("CORP\\admin", "Passw0rd!");
    let negotiate = client.step(None).expect("type 1");
    assert!(negotiate.starts_with(b"NTLMSSP\0"));
    let (challenge, _) = server.accept(&negotiate).expect("type 2");
    let authenticate = client.step(Some(&challenge)).expect("type 3");
    assert!(client.is_complete());
    server.accept(&authenticate).expect("accepted");

    let (header, sealed) = client.seal(b"<s:Envelope/>").expect("seal");
    assert_eq!(header.len(), 16, "an NTLM signature");
    assert_ne!(sealed, b"<s:Envelope/>");
    let mut token = header.clone();
    let mut data = sealed.clone();
    let mut buffers = [
        SecurityBufferRef::token_buf(&mut token),
        SecurityBufferRef::data_buf(&mut data),
    ];
    server
        .ntlm
        .decrypt_message(&mut buffers)
        .expect("server unseals");
    assert_eq!(buffers[1].data(), b"<s:Envelope/>");

    let mut token = vec![0u8; 16];
    let mut data = b"reply".to_vec();
    let mut buffers = [
        SecurityBufferRef::token_buf(&mut token),
        SecurityBufferRef::data_buf(&mut data),
    ];
    server
        .ntlm
        .encrypt_message(EncryptionFlags::empty(), &mut buffers)
        .expect("server seals");
    let (h, d) = (buffers[0].data().to_vec(), buffers[1].data().to_vec());
    assert_eq!(client.unseal(&h, &d).expect("unsealed"), b"reply");
    // a tampered message is refused
    let (h, mut d) = client.seal(b"second").expect("seal");
    d[0] ^= 1;
    let mut token = h;
    let mut buffers = [
        SecurityBufferRef::token_buf(&mut token),
        SecurityBufferRef::data_buf(&mut d),
    ];
    assert!(server.ntlm.decrypt_message(&mut buffers).is_err());
}

/// Over HTTPS the NTLM AUTHENTICATE message carries the bindings' hash: an acceptor
/// expecting another certificate's refuses it, one expecting this certificate's accepts.
#[test]
fn ntlm_carries_channel_bindings_the_acceptor_checks() {
    let ours = crate::winrm::binding::tls_server_end_point(b"our certificate");
    let theirs = crate::winrm::binding::tls_server_end_point(b"another certificate");
    for (expected, accepted) in [(&theirs, false), (&ours, true)] {
        let mut client = Context::new(
            Mechanism::Ntlm,
            &password_of("CORP\\admin", Secret::new("Passw0rd!")),
            "HTTP/kms01",
            Some(&ours),
            Duration::from_secs(5),
        )
        .expect("client");
        let mut server = Server::new("CORP\\admin", "Passw0rd!");
        let (challenge, _) = server.accept(&client.step(None).expect("1")).expect("2");
        let authenticate = client.step(Some(&challenge)).expect("3");
        let result = server.accept_bound(&authenticate, Some(expected));
        assert_eq!(result.is_ok(), accepted, "{result:?}");
    }
}

#[test]
fn a_wrong_password_is_refused_by_the_acceptor() {
    let password = Secret::new("wrong");
    let mut client = Context::new(
        Mechanism::Ntlm,
        &password_of("CORP\\admin", password),
        "HTTP/kms01",
        None,
        Duration::from_secs(5),
    )
    .expect("client");
    let mut server = Server::new("CORP\\admin", "Passw0rd!");
    let (challenge, _) = server.accept(&client.step(None).expect("1")).expect("2");
    let authenticate = client.step(Some(&challenge)).expect("3");
    assert!(server.accept(&authenticate).is_err());
}

#[test]
fn negotiate_without_a_kdc_offers_spnego() {
    let password = Secret::new("Passw0rd!");
    let mut client = Context::new(
        Mechanism::Negotiate,
        &password_of("CORP\\admin", password),
        "HTTP/kms01",
        None,
        Duration::from_secs(5),
    )
    .expect("client");
    let token = client.step(None).expect("first token");
    assert_eq!(token.first(), Some(&0x60), "a GSS-API InitialContextToken");
}
