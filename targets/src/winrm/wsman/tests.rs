//! The builders read back with an XML parser, and the reader against replies in the shapes
//! Windows sends (the recorded ones are checked by `tests/wsman_fixtures.rs`).

use super::*;

const ID: &str = "uuid:11111111-2222-4333-8444-555555555555";
const SHELL_ID: &str = "4283CBDC-3706-415B-88BD-B385F3E51A53";
const COMMAND_ID: &str = "CF84C20A-0A35-43FA-AF78-0B4711DA5F30";

fn endpoint() -> Endpoint {
    Endpoint::new("http://kms01:5985/wsman")
}

fn find<'a, 'i>(doc: &'a Document<'i>, ns: &str, name: &str) -> Node<'a, 'i> {
    doc.descendants()
        .find(|n| n.has_tag_name((ns, name)))
        .unwrap_or_else(|| panic!("no {name} in the envelope"))
}

fn options(doc: &Document<'_>) -> Vec<(String, String)> {
    doc.descendants()
        .filter(|n| n.has_tag_name((WSMAN, "Option")))
        .map(|n| {
            let name = n.attribute("Name").unwrap_or_default().to_string();
            (name, n.text().unwrap_or_default().to_string())
        })
        .collect()
}

/// Checks the header every request carries and returns the envelope's text.
fn check_header(xml: &str, action: &str, shell_id: Option<&str>) {
    let doc = Document::parse(xml).expect("a request is well-formed XML");
    let text = |name: (&str, &str)| find(&doc, name.0, name.1).text().map(str::to_string);
    assert_eq!(text((ADDRESSING, "Action")).as_deref(), Some(action));
    assert_eq!(text((WSMAN, "ResourceURI")).as_deref(), Some(RESOURCE_URI));
    assert_eq!(text((ADDRESSING, "MessageID")).as_deref(), Some(ID));
    assert_eq!(
        text((ADDRESSING, "To")).as_deref(),
        Some("http://kms01:5985/wsman")
    );
    assert_eq!(
        text((WSMAN, "OperationTimeout")).as_deref(),
        Some("PT20.000S")
    );
    assert_eq!(text((WSMAN, "MaxEnvelopeSize")).as_deref(), Some("153600"));
    assert_eq!(text((ADDRESSING, "Address")).as_deref(), Some(ANONYMOUS));
    let locale = find(&doc, WSMAN, "Locale");
    assert_eq!(
        locale.attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        Some("en-US")
    );
    assert_eq!(locale.attribute((SOAP, "mustUnderstand")), Some("false"));
    assert_eq!(
        find(&doc, WSMV, "DataLocale").attribute(("http://www.w3.org/XML/1998/namespace", "lang")),
        Some("en-US")
    );
    let selector = doc
        .descendants()
        .find(|n| n.has_tag_name((WSMAN, "Selector")));
    assert_eq!(
        selector.and_then(|s| s.attribute("Name")),
        shell_id.map(|_| "ShellId")
    );
    assert_eq!(selector.and_then(|s| s.text()), shell_id);
}

#[test]
fn create_asks_for_a_profileless_utf8_shell() {
    let xml = create_shell(&endpoint(), ID, std::time::Duration::from_secs(90));
    check_header(&xml, &format!("{TRANSFER}/Create"), None);
    let doc = Document::parse(&xml).expect("well-formed");
    assert_eq!(
        options(&doc),
        [
            ("WINRS_NOPROFILE".into(), "TRUE".into()),
            ("WINRS_CODEPAGE".into(), "65001".into())
        ]
    );
    assert_eq!(find(&doc, SHELL, "InputStreams").text(), Some("stdin"));
    assert_eq!(
        find(&doc, SHELL, "OutputStreams").text(),
        Some("stdout stderr")
    );
    assert_eq!(find(&doc, SHELL, "IdleTimeOut").text(), Some("PT90S"));
}

#[test]
fn command_escapes_its_arguments_one_element_each() {
    let args = vec![
        "-Command".to_string(),
        "<&\"'>".to_string(),
        "tab\tcr\rlf\n".to_string(),
        String::new(),
    ];
    let xml = command(&endpoint(), ID, SHELL_ID, "power<shell>.exe", &args);
    check_header(&xml, &format!("{SHELL}/Command"), Some(SHELL_ID));
    let doc = Document::parse(&xml).expect("well-formed");
    assert_eq!(
        options(&doc),
        [
            ("WINRS_CONSOLEMODE_STDIN".into(), "FALSE".into()),
            ("WINRS_SKIP_CMD_SHELL".into(), "FALSE".into())
        ]
    );
    assert_eq!(
        find(&doc, SHELL, "Command").text(),
        Some("power<shell>.exe")
    );
    let read: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name((SHELL, "Arguments")))
        .map(|n| n.text().unwrap_or_default().to_string())
        .collect();
    assert_eq!(read, args);
}

#[test]
fn control_characters_xml_cannot_carry_become_replacement_characters() {
    let xml = command(&endpoint(), ID, SHELL_ID, "a\u{1}b", &[]);
    let doc = Document::parse(&xml).expect("well-formed");
    assert_eq!(find(&doc, SHELL, "Command").text(), Some("a\u{FFFD}b"));
}

#[test]
fn send_carries_base64_stdin_and_end_only_when_asked() {
    let data: Vec<u8> = (0..=255).collect();
    for end in [false, true] {
        let xml = send(&endpoint(), ID, SHELL_ID, COMMAND_ID, &data, end);
        check_header(&xml, &format!("{SHELL}/Send"), Some(SHELL_ID));
        let doc = Document::parse(&xml).expect("well-formed");
        let stream = find(&doc, SHELL, "Stream");
        assert_eq!(stream.attribute("Name"), Some("stdin"));
        assert_eq!(stream.attribute("CommandId"), Some(COMMAND_ID));
        assert_eq!(stream.attribute("End"), end.then_some("true"));
        let decoded = BASE64
            .decode(stream.text().unwrap_or_default())
            .expect("base64");
        assert_eq!(decoded, data);
        assert!(options(&doc).is_empty());
    }
}

#[test]
fn receive_signal_and_delete_name_the_shell_and_command() {
    let xml = receive(&endpoint(), ID, SHELL_ID, COMMAND_ID);
    check_header(&xml, &format!("{SHELL}/Receive"), Some(SHELL_ID));
    let doc = Document::parse(&xml).expect("well-formed");
    let desired = find(&doc, SHELL, "DesiredStream");
    assert_eq!(desired.attribute("CommandId"), Some(COMMAND_ID));
    assert_eq!(desired.text(), Some("stdout stderr"));

    let xml = signal_terminate(&endpoint(), ID, SHELL_ID, COMMAND_ID);
    check_header(&xml, &format!("{SHELL}/Signal"), Some(SHELL_ID));
    let doc = Document::parse(&xml).expect("well-formed");
    assert_eq!(
        find(&doc, SHELL, "Signal").attribute("CommandId"),
        Some(COMMAND_ID)
    );
    assert_eq!(find(&doc, SHELL, "Code").text(), Some(SIGNAL_TERMINATE));

    let xml = delete_shell(&endpoint(), ID, SHELL_ID);
    check_header(&xml, &format!("{TRANSFER}/Delete"), Some(SHELL_ID));
    let doc = Document::parse(&xml).expect("well-formed");
    assert!(!find(&doc, SOAP, "Body").has_children());
}

#[test]
fn the_operation_timeout_is_an_xs_duration_with_milliseconds() {
    assert_eq!(duration(Duration::from_secs(20)), "PT20.000S");
    assert_eq!(duration(Duration::from_millis(1_500)), "PT1.500S");
    assert_eq!(duration(Duration::from_secs(3600)), "PT3600.000S");
}

#[test]
fn message_ids_are_random_uppercase_v4_uuids() {
    let a = message_id().expect("the OS random source");
    let b = message_id().expect("the OS random source");
    assert_ne!(a, b);
    let uuid = a.strip_prefix("uuid:").expect("the uuid: scheme");
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12]);
    assert!(uuid
        .chars()
        .all(|c| c == '-' || c.is_ascii_digit() || c.is_ascii_uppercase()));
    assert_eq!(uuid.as_bytes()[14], b'4');
    assert!(matches!(uuid.as_bytes()[19], b'8' | b'9' | b'A' | b'B'));
}

/// A reply envelope as Windows writes it (its prefixes: `a:` addressing, `w:` WS-Man).
fn reply(relates_to: &str, body: &str) -> String {
    format!(
        "<s:Envelope xml:lang=\"en-US\" xmlns:s=\"{SOAP}\" xmlns:a=\"{ADDRESSING}\" \
         xmlns:x=\"{TRANSFER}\" xmlns:w=\"{WSMAN}\" xmlns:rsp=\"{SHELL}\" xmlns:p=\"{WSMV}\">\
         <s:Header><a:Action>http://example/Response</a:Action>\
         <a:MessageID>uuid:7790BEEF-5704-4558-AB8D-D44833CF5805</a:MessageID>\
         <a:To>{ANONYMOUS}</a:To><a:RelatesTo>{relates_to}</a:RelatesTo></s:Header>\
         <s:Body>{body}</s:Body></s:Envelope>"
    )
}

fn stream(name: &str, data: &[u8], end: bool) -> String {
    let end = if end { " End=\"true\"" } else { "" };
    format!(
        "<rsp:Stream Name=\"{name}\" CommandId=\"{COMMAND_ID}\"{end}>{}</rsp:Stream>",
        BASE64.encode(data)
    )
}

#[test]
fn create_gives_the_shell_id() {
    let body = format!(
        "<x:ResourceCreated><a:Address>http://kms01:5985/wsman</a:Address><a:ReferenceParameters>\
         <w:ResourceURI>{RESOURCE_URI}</w:ResourceURI><w:SelectorSet>\
         <w:Selector Name=\"ShellId\">{SHELL_ID}</w:Selector></w:SelectorSet>\
         </a:ReferenceParameters></x:ResourceCreated>"
    );
    let created = Reply::Created {
        shell_id: SHELL_ID.into(),
        idle: None,
    };
    assert_eq!(
        parse(Expect::Create, &reply(ID, &body), ID),
        Ok(created.clone())
    );
    let body = format!("<rsp:Shell><rsp:ShellId> {SHELL_ID} </rsp:ShellId></rsp:Shell>");
    assert_eq!(parse(Expect::Create, &reply(ID, &body), ID), Ok(created));
    // the idle time granted, as the recorded replies write it
    for (written, seconds) in [
        ("PT60.000S", Some(60_000)),
        ("PT7200.000S", Some(7_200_000)),
        ("PT2147483.647S", Some(2_147_483_647)),
        ("P0DT0H3M0S", Some(180_000)),
        ("P1DT1H", Some(90_000_000)),
        ("PT1.5M", None),
        ("P1Y", None),
        ("-PT60S", None),
        ("PT60", None),
        ("PTS", None),
        ("garbage", None),
    ] {
        let body = format!(
            "<rsp:Shell><rsp:ShellId>{SHELL_ID}</rsp:ShellId>\
             <rsp:IdleTimeOut>{written}</rsp:IdleTimeOut></rsp:Shell>"
        );
        assert_eq!(
            parse(Expect::Create, &reply(ID, &body), ID),
            Ok(Reply::Created {
                shell_id: SHELL_ID.into(),
                idle: seconds.map(Duration::from_millis),
            }),
            "{written}"
        );
    }
    assert_eq!(
        parse(Expect::Create, &reply(ID, ""), ID),
        Err(ParseError::Malformed(
            "no ShellId in the Create response".into()
        ))
    );
}

#[test]
fn command_gives_the_command_id() {
    let body = format!(
        "<rsp:CommandResponse><rsp:CommandId>{COMMAND_ID}</rsp:CommandId></rsp:CommandResponse>"
    );
    assert_eq!(
        parse(Expect::Command, &reply(ID, &body), ID),
        Ok(Reply::CommandStarted {
            command_id: COMMAND_ID.into()
        })
    );
    assert!(matches!(
        parse(Expect::Command, &reply(ID, "<rsp:CommandResponse/>"), ID),
        Err(ParseError::Malformed(m)) if m == "no CommandId in the Command response"
    ));
}

#[test]
fn receive_joins_the_chunks_of_each_stream_in_order() {
    let body = format!(
        "<rsp:ReceiveResponse>{}{}{}{}{}<rsp:CommandState CommandId=\"{COMMAND_ID}\" \
         State=\"{COMMAND_DONE}\"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState>\
         </rsp:ReceiveResponse>",
        stream("stdout", b"C:\\Windows", false),
        stream("stderr", b"oops", false),
        stream("stdout", b"\r\n", false),
        stream("stdout", b"", true),
        stream("stderr", b"", true),
    );
    let expected = Received {
        stdout: b"C:\\Windows\r\n".to_vec(),
        stderr: b"oops".to_vec(),
        exit_code: Some(3),
        done: true,
    };
    assert_eq!(
        parse(Expect::Receive, &reply(ID, &body), ID),
        Ok(Reply::Received(expected))
    );
}

#[test]
fn a_running_command_has_no_exit_code_yet() {
    let body = format!(
        "<rsp:ReceiveResponse>{}<rsp:CommandState CommandId=\"{COMMAND_ID}\" \
         State=\"{SHELL}/CommandState/Running\"/></rsp:ReceiveResponse>",
        stream("stdout", b"partial", false)
    );
    assert_eq!(
        parse(Expect::Receive, &reply(ID, &body), ID),
        Ok(Reply::Received(Received {
            stdout: b"partial".to_vec(),
            ..Received::default()
        }))
    );
}

#[test]
fn exit_codes_keep_their_32_bits() {
    for (text, code) in [("-1", -1), ("3221225477", -1_073_741_819), ("0", 0)] {
        let body = format!(
            "<rsp:ReceiveResponse><rsp:CommandState State=\"{COMMAND_DONE}\">\
             <rsp:ExitCode>{text}</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
        );
        let Ok(Reply::Received(r)) = parse(Expect::Receive, &reply(ID, &body), ID) else {
            panic!("exit code {text} not read");
        };
        assert_eq!(r.exit_code, Some(code));
    }
    let body = format!(
        "<rsp:ReceiveResponse><rsp:CommandState State=\"{COMMAND_DONE}\"/></rsp:ReceiveResponse>"
    );
    assert_eq!(
        parse(Expect::Receive, &reply(ID, &body), ID),
        Err(ParseError::Malformed(
            "no ExitCode in a Done CommandState".into()
        ))
    );
}

#[test]
fn a_stream_that_is_not_base64_is_malformed() {
    let body = "<rsp:ReceiveResponse><rsp:Stream Name=\"stdout\">not*base64</rsp:Stream>\
                </rsp:ReceiveResponse>";
    assert!(matches!(
        parse(Expect::Receive, &reply(ID, body), ID),
        Err(ParseError::Malformed(m)) if m.starts_with("stream `stdout` of the Receive response is not base64")
    ));
}

#[test]
fn the_reply_must_relate_to_the_request() {
    let other = "uuid:99999999-2222-4333-8444-555555555555";
    assert_eq!(
        parse(Expect::Delete, &reply(other, ""), ID),
        Err(ParseError::RelatesTo {
            expected: ID.into(),
            found: other.into()
        })
    );
    assert_eq!(
        parse(Expect::Delete, &reply(&ID.to_lowercase(), ""), ID),
        Ok(Reply::Deleted)
    );
    let no_relates_to = format!(
        "<s:Envelope xmlns:s=\"{SOAP}\"><s:Header/><s:Body><rsp:SignalResponse xmlns:rsp=\"{SHELL}\"/></s:Body></s:Envelope>"
    );
    assert_eq!(
        parse(Expect::Signal, &no_relates_to, ID),
        Ok(Reply::Signalled)
    );
    assert_eq!(
        parse(Expect::Send, &reply(ID, "<rsp:SendResponse/>"), ID),
        Ok(Reply::Sent)
    );
}

/// A fault in the shape of the recorded ones: code, subcode, reason, WSManFault detail.
fn fault(code: &str, subcode: &str, wsman_code: u32, message: &str) -> String {
    reply(
        ID,
        &format!(
            "<s:Fault><s:Code><s:Value>{code}</s:Value><s:Subcode><s:Value>{subcode}</s:Value>\
             </s:Subcode></s:Code><s:Reason><s:Text xml:lang=\"en-US\">the reason text \
             </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f=\"{WSMAN_FAULT}\" \
             Code=\"{wsman_code}\" Machine=\"kms01\"><f:Message>{message}</f:Message>\
             </f:WSManFault></s:Detail></s:Fault>"
        ),
    )
}

fn read(xml: &str) -> Fault {
    match parse(Expect::Receive, xml, ID) {
        Err(ParseError::Fault(f)) => f,
        other => panic!("not a fault: {other:?}"),
    }
}

#[test]
fn a_receive_that_timed_out_is_told_apart() {
    let text = "The WS-Management service cannot complete the operation within the time specified \
                in OperationTimeout.  ";
    let f = read(&fault("s:Receiver", "w:TimedOut", TIMED_OUT_CODE, text));
    assert!(f.is_timed_out());
    assert_eq!(f.code, "s:Receiver");
    assert_eq!(f.subcode.as_deref(), Some("w:TimedOut"));
    assert_eq!(f.message, text.trim().replace("  ", " "));
    let by_code_only = Fault {
        subcode: None,
        ..f.clone()
    };
    assert!(by_code_only.is_timed_out());
}

#[test]
fn access_denied_quota_and_unknown_shell_are_faults_with_their_codes() {
    let f = read(&fault(
        "s:Sender",
        "w:AccessDenied",
        5,
        "Access is denied. ",
    ));
    assert_eq!(
        (f.subcode.as_deref(), f.wsman_code, f.message.as_str()),
        (Some("w:AccessDenied"), Some(5), "Access is denied.")
    );
    assert!(!f.is_timed_out());
    assert_eq!(
        f.to_string(),
        "WS-Management fault `s:Sender` `w:AccessDenied` (code 5): Access is denied."
    );

    let quota = "The WS-Management service cannot process the request. This user is allowed a \
                 maximum number of 5 concurrent shells, which has been exceeded.";
    let f = read(&fault("s:Receiver", "w:QuotaLimit", 2_150_859_173, quota));
    assert_eq!(f.subcode.as_deref(), Some("w:QuotaLimit"));
    assert_eq!(f.wsman_code, Some(2_150_859_173));
    assert_eq!(f.message, quota);

    let gone = "The request for the Windows Remote Shell with ShellId 4283CBDC failed because the \
                shell was not found on the server.";
    let f = read(&fault(
        "s:Sender",
        "w:InvalidSelectors",
        2_150_858_843,
        gone,
    ));
    assert_eq!(f.subcode.as_deref(), Some("w:InvalidSelectors"));
    assert_eq!(f.message, gone);
}

#[test]
fn a_provider_fault_nested_in_the_message_is_read_whole() {
    let nested = "<f:ProviderFault provider=\"Shell cmd plugin\" path=\"%systemroot%\\system32\\winrscmd.dll\">\
                  The system cannot\n  find the file specified. </f:ProviderFault>";
    let f = read(&fault(
        "s:Receiver",
        "w:InternalError",
        2_147_942_402,
        nested,
    ));
    assert_eq!(f.message, "The system cannot find the file specified.");
}

#[test]
fn without_a_wsman_fault_the_reason_is_the_message() {
    let xml = reply(
        ID,
        "<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code><s:Reason>\
         <s:Text xml:lang=\"en-US\"> Bad   request </s:Text></s:Reason></s:Fault>",
    );
    let f = read(&xml);
    assert_eq!(
        (f.code.as_str(), f.subcode, f.wsman_code, f.message.as_str()),
        ("s:Sender", None, None, "Bad request")
    );
}

#[test]
fn fault_codes_are_matched_by_namespace_not_by_prefix() {
    let xml = format!(
        "<env:Envelope xmlns:env=\"{SOAP}\" xmlns:wsman=\"{WSMAN}\"><env:Body><env:Fault>\
         <env:Code><env:Value>env:Receiver</env:Value><env:Subcode>\
         <env:Value>wsman:TimedOut</env:Value></env:Subcode></env:Code></env:Fault>\
         </env:Body></env:Envelope>"
    );
    let f = read(&xml);
    assert_eq!(f.code, "s:Receiver");
    assert!(f.is_timed_out());
    // `w:` bound to another namespace is not WS-Management's TimedOut
    let xml = format!(
        "<s:Envelope xmlns:s=\"{SOAP}\" xmlns:w=\"urn:other\"><s:Body><s:Fault><s:Code>\
         <s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode>\
         </s:Code></s:Fault></s:Body></s:Envelope>"
    );
    let f = read(&xml);
    assert_eq!(f.subcode.as_deref(), Some("{urn:other}TimedOut"));
    assert!(!f.is_timed_out());
    // and elements in the wrong namespace are not the envelope
    let xml =
        "<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\"><s:Body/></s:Envelope>";
    assert!(matches!(
        parse(Expect::Delete, xml, ID),
        Err(ParseError::Malformed(m)) if m == "the Delete response is not a SOAP 1.2 envelope"
    ));
}

#[test]
fn truncated_or_garbage_replies_are_malformed_never_a_panic() {
    let samples = [
        reply(
            ID,
            &format!(
                "<rsp:ReceiveResponse>{}</rsp:ReceiveResponse>",
                stream("stdout", b"hi", true)
            ),
        ),
        fault("s:Receiver", "w:TimedOut", TIMED_OUT_CODE, "timed out"),
    ];
    for sample in &samples {
        for cut in (0..sample.len()).filter(|&i| sample.is_char_boundary(i)) {
            for kind in [Expect::Create, Expect::Receive] {
                assert!(
                    matches!(
                        parse(kind, &sample[..cut], ID),
                        Err(ParseError::Malformed(_))
                    ),
                    "a reply cut at byte {cut} was read"
                );
            }
        }
    }
    // a fixed pseudo-random sequence (xorshift) of bytes, XML punctuation overrepresented
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..2_000 {
        let text: String = (0..64)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let alphabet = b"<>/=\"': sxmlns&;#Envelope Body Fault \t\n";
                char::from(alphabet[usize::try_from(state).unwrap_or(0) % alphabet.len()])
            })
            .collect();
        for kind in [Expect::Create, Expect::Command, Expect::Receive] {
            assert!(matches!(
                parse(kind, &text, ID),
                Err(ParseError::Malformed(_))
            ));
        }
    }
    assert!(matches!(
        parse(Expect::Delete, "", ID),
        Err(ParseError::Malformed(m)) if m.starts_with("the Delete response is not XML")
    ));
}

/// The option value a Command sends is the facts table's `console-mode-stdin` row (wsman.h:
/// absent or FALSE is a pipe; Ansible sends FALSE whenever it pipes input), so the two cannot
/// drift apart.
#[test]
fn console_mode_stdin_is_the_facts_table_row() {
    assert_eq!(
        kmsconf_model::facts::facts().winrm("console-mode-stdin"),
        CONSOLE_MODE_STDIN
    );
}
