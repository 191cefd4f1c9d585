//! The WS-Management (MS-WSMV) messages of the WinRS shell, resource `windows/shell/cmd`: the
//! request envelopes kmsconf sends (Create, Command, Send, Receive, Signal, Delete) and a reader
//! for the replies, SOAP faults included. Pure: no I/O and no logging. A Send envelope carries
//! stdin, which may hold secrets, so what the builders return must never be logged either.

use std::fmt;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use roxmltree::{Document, Node};

pub use crate::error::winrm::{Fault, ParseError};

const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
const WSMV: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const WSMAN_FAULT: &str = "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault";
const TRANSFER: &str = "http://schemas.xmlsoap.org/ws/2004/09/transfer";
const ANONYMOUS: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
const COMMAND_DONE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done";
const SIGNAL_TERMINATE: &str =
    "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate";

/// The resource every request here addresses: the WinRS command shell.
pub const RESOURCE_URI: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd";
/// `WINRS_CONSOLEMODE_STDIN` on a Command: kmsconf pipes the agent on stdin, and `TRUE` would
/// tell the service stdin is a console (wsman.h: "default implies Pipe"); Ansible sends `FALSE`
/// whenever it pipes input.
pub const CONSOLE_MODE_STDIN: &str = "FALSE";
/// The WSManFault code of a Receive long poll that ended with no output (`ERROR_WSMAN_OPERATION_TIMEDOUT`).
pub const TIMED_OUT_CODE: u32 = 2_150_858_793;

/// Where the requests go and the limits they ask the service to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The service URL, sent as `wsa:To`, e.g. `http://kms01:5985/wsman`.
    pub url: String,
    /// The largest reply envelope the client accepts, in bytes.
    pub max_envelope_size: u32,
    /// How long the service may take over one operation; a Receive waits this long for output.
    pub operation_timeout: Duration,
    /// The language of fault texts (`wsman:Locale`) and of output (`wsmv:DataLocale`).
    pub locale: String,
}

impl Endpoint {
    /// An endpoint with WinRM's usual limits: 153,600-byte envelopes, 20 s operations, `en-US`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_envelope_size: 153_600,
            operation_timeout: Duration::from_secs(20),
            locale: "en-US".into(),
        }
    }
}

/// A fresh `wsa:MessageID`: `uuid:` and a random (version 4) UUID in upper case, as pywinrm and
/// pypsrp send it.
pub fn message_id() -> Result<String, getrandom::Error> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|byte| format!("{byte:02X}")).collect();
    Ok(format!(
        "uuid:{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Create: opens a shell without the user's profile, with UTF-8 (code page 65001) output, which
/// the host deletes once no request has come for `idle` (whole seconds, at least one). The
/// element follows the streams, as pypsrp sends it and Windows takes it in its recordings.
pub fn create_shell(ep: &Endpoint, message_id: &str, idle: Duration) -> String {
    let head = Head {
        action: &format!("{TRANSFER}/Create"),
        options: &[("WINRS_NOPROFILE", "TRUE"), ("WINRS_CODEPAGE", "65001")],
        shell_id: None,
    };
    let body = format!(
        "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>\
         <rsp:OutputStreams>stdout stderr</rsp:OutputStreams>\
         <rsp:IdleTimeOut>PT{}S</rsp:IdleTimeOut></rsp:Shell>",
        idle.as_secs().max(1)
    );
    envelope(ep, message_id, &head, &body)
}

/// Command: starts `program` in the shell, through `cmd.exe` as WinRS does by default. WinRS
/// joins the program and the arguments with spaces and quotes nothing: an argument that must
/// stay one word on Windows has to carry its own quotes.
pub fn command(
    ep: &Endpoint,
    message_id: &str,
    shell_id: &str,
    program: &str,
    args: &[String],
) -> String {
    let head = Head {
        action: &format!("{SHELL}/Command"),
        options: &[
            ("WINRS_CONSOLEMODE_STDIN", CONSOLE_MODE_STDIN),
            ("WINRS_SKIP_CMD_SHELL", "FALSE"),
        ],
        shell_id: Some(shell_id),
    };
    let args: String = args
        .iter()
        .map(|a| format!("<rsp:Arguments>{}</rsp:Arguments>", escape(a)))
        .collect();
    let body = format!(
        "<rsp:CommandLine><rsp:Command>{}</rsp:Command>{args}</rsp:CommandLine>",
        escape(program)
    );
    envelope(ep, message_id, &head, &body)
}

/// Send: `data` on the command's stdin; `end` closes stdin after it.
pub fn send(
    ep: &Endpoint,
    message_id: &str,
    shell_id: &str,
    command_id: &str,
    data: &[u8],
    end: bool,
) -> String {
    let head = Head {
        action: &format!("{SHELL}/Send"),
        options: &[],
        shell_id: Some(shell_id),
    };
    let end = if end { " End=\"true\"" } else { "" };
    let body = format!(
        "<rsp:Send><rsp:Stream Name=\"stdin\" CommandId=\"{}\"{end}>{}</rsp:Stream></rsp:Send>",
        escape(command_id),
        BASE64.encode(data)
    );
    envelope(ep, message_id, &head, &body)
}

/// Receive: waits up to the operation timeout for the command's stdout and stderr.
pub fn receive(ep: &Endpoint, message_id: &str, shell_id: &str, command_id: &str) -> String {
    let head = Head {
        action: &format!("{SHELL}/Receive"),
        options: &[],
        shell_id: Some(shell_id),
    };
    let body = format!(
        "<rsp:Receive><rsp:DesiredStream CommandId=\"{}\">stdout stderr</rsp:DesiredStream>\
         </rsp:Receive>",
        escape(command_id)
    );
    envelope(ep, message_id, &head, &body)
}

/// Signal terminate: ends the command and frees what the service holds for it.
pub fn signal_terminate(
    ep: &Endpoint,
    message_id: &str,
    shell_id: &str,
    command_id: &str,
) -> String {
    let head = Head {
        action: &format!("{SHELL}/Signal"),
        options: &[],
        shell_id: Some(shell_id),
    };
    let body = format!(
        "<rsp:Signal CommandId=\"{}\"><rsp:Code>{SIGNAL_TERMINATE}</rsp:Code></rsp:Signal>",
        escape(command_id)
    );
    envelope(ep, message_id, &head, &body)
}

/// Delete: closes the shell.
pub fn delete_shell(ep: &Endpoint, message_id: &str, shell_id: &str) -> String {
    let head = Head {
        action: &format!("{TRANSFER}/Delete"),
        options: &[],
        shell_id: Some(shell_id),
    };
    envelope(ep, message_id, &head, "")
}

/// What varies in the header from one request to the next.
struct Head<'a> {
    action: &'a str,
    options: &'a [(&'a str, &'a str)],
    shell_id: Option<&'a str>,
}

/// The SOAP envelope with the header pywinrm and pypsrp send (less pypsrp's optional
/// `wsmv:SessionId`).
fn envelope(ep: &Endpoint, message_id: &str, head: &Head<'_>, body: &str) -> String {
    let options = if head.options.is_empty() {
        String::new()
    } else {
        let items: String = head
            .options
            .iter()
            .map(|(name, value)| {
                format!(
                    "<wsman:Option Name=\"{}\">{}</wsman:Option>",
                    escape(name),
                    escape(value)
                )
            })
            .collect();
        format!("<wsman:OptionSet s:mustUnderstand=\"true\">{items}</wsman:OptionSet>")
    };
    let selectors = head.shell_id.map_or_else(String::new, |id| {
        format!(
            "<wsman:SelectorSet><wsman:Selector Name=\"ShellId\">{}</wsman:Selector>\
             </wsman:SelectorSet>",
            escape(id)
        )
    });
    let locale = escape(&ep.locale);
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
         <s:Envelope xmlns:s=\"{SOAP}\" xmlns:wsa=\"{ADDRESSING}\" xmlns:wsman=\"{WSMAN}\" \
         xmlns:wsmv=\"{WSMV}\" xmlns:rsp=\"{SHELL}\"><s:Header>\
         <wsa:Action s:mustUnderstand=\"true\">{action}</wsa:Action>\
         <wsmv:DataLocale s:mustUnderstand=\"false\" xml:lang=\"{locale}\"/>\
         <wsman:Locale s:mustUnderstand=\"false\" xml:lang=\"{locale}\"/>\
         <wsman:MaxEnvelopeSize s:mustUnderstand=\"true\">{max}</wsman:MaxEnvelopeSize>\
         <wsa:MessageID>{id}</wsa:MessageID>\
         <wsman:OperationTimeout>{timeout}</wsman:OperationTimeout>\
         <wsa:ReplyTo><wsa:Address s:mustUnderstand=\"true\">{ANONYMOUS}</wsa:Address></wsa:ReplyTo>\
         <wsman:ResourceURI s:mustUnderstand=\"true\">{RESOURCE_URI}</wsman:ResourceURI>\
         <wsa:To>{to}</wsa:To>{options}{selectors}</s:Header><s:Body>{body}</s:Body></s:Envelope>",
        action = escape(head.action),
        max = ep.max_envelope_size,
        id = escape(message_id),
        timeout = duration(ep.operation_timeout),
        to = escape(&ep.url),
    )
}

/// An `xs:duration` in seconds with milliseconds, as Windows writes them: `PT20.000S`.
fn duration(d: Duration) -> String {
    format!("PT{}.{:03}S", d.as_secs(), d.subsec_millis())
}

/// Text and attribute values as XML. Tab, CR and LF become character references so a parser
/// gives them back unchanged; other C0 controls, which XML 1.0 cannot carry at all, become
/// U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if c < ' ' || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The request a reply answers, which says what the reply must hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Create,
    Command,
    Send,
    Receive,
    Signal,
    Delete,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Create => "Create",
            Self::Command => "Command",
            Self::Send => "Send",
            Self::Receive => "Receive",
            Self::Signal => "Signal",
            Self::Delete => "Delete",
        })
    }
}

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `idle`: the idle time the host granted the shell (`rsp:IdleTimeOut` of the reply), when
    /// it says one kmsconf can read; it may be less than asked (the service's own `IdleTimeout`
    /// caps it).
    Created {
        shell_id: String,
        idle: Option<Duration>,
    },
    CommandStarted {
        command_id: String,
    },
    Sent,
    Received(Received),
    Signalled,
    Deleted,
}

impl Reply {
    /// What kind of reply it is, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Created { .. } => "Create reply",
            Self::CommandStarted { .. } => "Command reply",
            Self::Sent => "Send reply",
            Self::Received(_) => "Receive reply",
            Self::Signalled => "Signal reply",
            Self::Deleted => "Delete reply",
        }
    }
}

/// The output one Receive brought back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Some(exit code) when CommandState is `.../CommandState/Done`. An exit code above
    /// `i32::MAX` (an NTSTATUS such as `0xC0000005`) keeps its 32 bits.
    pub exit_code: Option<i32>,
    /// The command has ended: no more output will come.
    pub done: bool,
}

impl Fault {
    /// A Receive long poll that ended with no output: not an error, the caller receives again.
    pub fn is_timed_out(&self) -> bool {
        self.subcode.as_deref() == Some("w:TimedOut") || self.wsman_code == Some(TIMED_OUT_CODE)
    }
}

/// Reads the reply to a `kind` request sent as `message_id`. A `wsa:RelatesTo` header, when
/// present, must name `message_id`; a SOAP fault in the body is [`ParseError::Fault`].
pub fn parse(kind: Expect, xml: &str, message_id: &str) -> Result<Reply, ParseError> {
    let malformed = |what: String| ParseError::Malformed(what);
    let doc = Document::parse(xml)
        .map_err(|e| malformed(format!("the {kind} response is not XML: {e}")))?;
    let envelope = doc.root_element();
    if !envelope.has_tag_name((SOAP, "Envelope")) {
        return Err(malformed(format!(
            "the {kind} response is not a SOAP 1.2 envelope"
        )));
    }
    let relates_to =
        child(envelope, SOAP, "Header").and_then(|h| child(h, ADDRESSING, "RelatesTo"));
    if let Some(found) = relates_to.map(|n| text(n).to_string()) {
        if !found.eq_ignore_ascii_case(message_id) {
            return Err(ParseError::RelatesTo {
                expected: message_id.to_string(),
                found,
            });
        }
    }
    let body = child(envelope, SOAP, "Body")
        .ok_or_else(|| malformed(format!("no Body in the {kind} response")))?;
    if let Some(fault) = child(body, SOAP, "Fault") {
        return Err(ParseError::Fault(read_fault(fault)));
    }
    match kind {
        Expect::Create => shell_id(body).map(|shell_id| Reply::Created {
            shell_id,
            idle: child(body, SHELL, "Shell")
                .and_then(|s| child(s, SHELL, "IdleTimeOut"))
                .and_then(|n| parse_duration(text(n))),
        }),
        Expect::Command => command_id(body).map(|command_id| Reply::CommandStarted { command_id }),
        Expect::Send => Ok(Reply::Sent),
        Expect::Receive => read_output(body).map(Reply::Received),
        Expect::Signal => Ok(Reply::Signalled),
        Expect::Delete => Ok(Reply::Deleted),
    }
}

/// An `xs:duration` of days, hours, minutes and seconds, as Windows writes them (`PT60.000S`,
/// `P0DT0H1M0S`); `None` for anything else (years or months, a sign, garbage).
fn parse_duration(text: &str) -> Option<Duration> {
    let rest = text.strip_prefix('P')?;
    let (days, time) = rest.split_once('T').unwrap_or((rest, ""));
    let mut seconds = 0f64;
    for (part, units) in [
        (days, &[('D', 86_400.0)][..]),
        (time, &[('H', 3_600.0), ('M', 60.0), ('S', 1.0)][..]),
    ] {
        let mut number = String::new();
        let mut next = 0;
        for c in part.chars() {
            if c.is_ascii_digit() || (c == '.' && units.len() > 1) {
                number.push(c);
                continue;
            }
            let at = units[next..].iter().position(|(u, _)| *u == c)?;
            let (unit, scale) = units[next + at];
            if number.contains('.') && unit != 'S' {
                return None;
            }
            seconds += number.parse::<f64>().ok()? * scale;
            number.clear();
            next += at + 1;
        }
        if !number.is_empty() {
            return None;
        }
    }
    Duration::try_from_secs_f64(seconds).ok()
}

/// The shell's ID: the `ShellId` selector of the created resource's reference (what every
/// Windows version sends), else `rsp:Shell/rsp:ShellId`.
fn shell_id(body: Node<'_, '_>) -> Result<String, ParseError> {
    let selector = child(body, TRANSFER, "ResourceCreated")
        .and_then(|r| child(r, ADDRESSING, "ReferenceParameters"))
        .and_then(|r| child(r, WSMAN, "SelectorSet"))
        .and_then(|s| {
            s.children().find(|n| {
                n.has_tag_name((WSMAN, "Selector")) && n.attribute("Name") == Some("ShellId")
            })
        });
    let element = child(body, SHELL, "Shell").and_then(|s| child(s, SHELL, "ShellId"));
    selector
        .or(element)
        .map(|n| text(n).to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ParseError::Malformed("no ShellId in the Create response".into()))
}

fn command_id(body: Node<'_, '_>) -> Result<String, ParseError> {
    child(body, SHELL, "CommandResponse")
        .and_then(|r| child(r, SHELL, "CommandId"))
        .map(|n| text(n).to_string())
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ParseError::Malformed("no CommandId in the Command response".into()))
}

/// The streams in document order, each `rsp:Stream` base64 on its own (an empty one, such as
/// the `End="true"` marker, adds nothing), and the command's state.
fn read_output(body: Node<'_, '_>) -> Result<Received, ParseError> {
    let response = child(body, SHELL, "ReceiveResponse").ok_or_else(|| {
        ParseError::Malformed("no ReceiveResponse in the Receive response".into())
    })?;
    let mut out = Received::default();
    for stream in children(response, SHELL, "Stream") {
        let name = stream.attribute("Name").unwrap_or_default();
        let target = match name {
            "stdout" => &mut out.stdout,
            "stderr" => &mut out.stderr,
            _ => continue,
        };
        let encoded: String = text(stream).split_ascii_whitespace().collect();
        let bytes = BASE64.decode(encoded).map_err(|e| {
            ParseError::Malformed(format!(
                "stream `{name}` of the Receive response is not base64: {e}"
            ))
        })?;
        target.extend_from_slice(&bytes);
    }
    if let Some(state) = child(response, SHELL, "CommandState") {
        out.done = state.attribute("State") == Some(COMMAND_DONE);
        if out.done {
            out.exit_code = Some(exit_code(state)?);
        }
    }
    Ok(out)
}

fn exit_code(state: Node<'_, '_>) -> Result<i32, ParseError> {
    let value = child(state, SHELL, "ExitCode")
        .map(text)
        .ok_or_else(|| ParseError::Malformed("no ExitCode in a Done CommandState".into()))?;
    value
        .parse::<i32>()
        .ok()
        .or_else(|| {
            value
                .parse::<u32>()
                .ok()
                .map(|n| i32::from_ne_bytes(n.to_ne_bytes()))
        })
        .ok_or_else(|| ParseError::Malformed(format!("the ExitCode `{value}` is not a number")))
}

fn read_fault(fault: Node<'_, '_>) -> Fault {
    let code = child(fault, SOAP, "Code");
    let value = code.and_then(|c| child(c, SOAP, "Value"));
    let subvalue = code
        .and_then(|c| child(c, SOAP, "Subcode"))
        .and_then(|s| child(s, SOAP, "Value"));
    let detail = child(fault, SOAP, "Detail").and_then(|d| child(d, WSMAN_FAULT, "WSManFault"));
    let wsman_message = detail
        .and_then(|d| child(d, WSMAN_FAULT, "Message"))
        .map(all_text)
        .filter(|m| !m.is_empty());
    let reason = child(fault, SOAP, "Reason")
        .and_then(|r| child(r, SOAP, "Text"))
        .map(all_text)
        .filter(|m| !m.is_empty());
    Fault {
        code: value.map(qname).unwrap_or_default(),
        subcode: subvalue.map(qname).filter(|s| !s.is_empty()),
        wsman_code: detail
            .and_then(|d| d.attribute("Code"))
            .and_then(|c| c.trim().parse().ok()),
        message: wsman_message
            .or(reason)
            .unwrap_or_else(|| "the fault has no text".into()),
    }
}

/// A QName value (`s:Receiver`, `w:TimedOut`) with the prefix kmsconf uses for its namespace,
/// so the prefix the service chose does not matter. A name in another namespace is written
/// `{namespace}local`; one with no prefix, or an unbound one, as it came.
fn qname(node: Node<'_, '_>) -> String {
    let value = text(node);
    let Some((prefix, local)) = value.split_once(':') else {
        return value.to_string();
    };
    match node.lookup_namespace_uri(Some(prefix)) {
        Some(SOAP) => format!("s:{local}"),
        Some(WSMAN) => format!("w:{local}"),
        Some(other) => format!("{{{other}}}{local}"),
        None => value.to_string(),
    }
}

fn child<'a, 'i>(node: Node<'a, 'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|n| n.has_tag_name((ns, name)))
}

fn children<'a, 'i: 'a>(
    node: Node<'a, 'i>,
    ns: &'a str,
    name: &'a str,
) -> impl Iterator<Item = Node<'a, 'i>> + 'a {
    node.children().filter(move |n| n.has_tag_name((ns, name)))
}

/// An element's own text, trimmed.
fn text<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or_default().trim()
}

/// All the text under an element, whitespace collapsed (a WSManFault message may nest a
/// provider fault).
fn all_text(node: Node<'_, '_>) -> String {
    let texts: Vec<&str> = node
        .descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect();
    texts
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
