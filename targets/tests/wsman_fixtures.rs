//! kmsconf's WS-Management layer against real Windows traffic: the request/response pairs that
//! pypsrp 0.9.1 recorded from Windows Server 2012 R2, 2016 and 2019 (its sdist on PyPI, MIT).
//! Every recorded reply to a `windows/shell/cmd` request is read with `wsman::parse`, and for
//! every recorded shell request kmsconf builds its own from the same values and compares the
//! two, element by element; the differences that are meant are listed in `ALLOWED`.
//!
//! Needs `KMSCONF_WSMAN_FIXTURES`, the JSON file `scripts/winrm-fixtures.py` writes
//! (`scripts/test.sh` downloads the sdist, writes the file and sets the variable). Without it the
//! tests fail, they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use kmsconf_targets::winrm::wsman::{self, Endpoint, Expect, ParseError, Reply, RESOURCE_URI};
use roxmltree::{Document, Node};
use serde::Deserialize;

const SOAP: &str = "http://www.w3.org/2003/05/soap-envelope";
const ADDRESSING: &str = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
const WSMAN: &str = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
const SHELL: &str = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
const XML: &str = "http://www.w3.org/XML/1998/namespace";
/// Prefixes for the comparison's item names, whatever prefixes a message used.
const PREFIXES: [(&str, &str); 6] = [
    (SOAP, "s"),
    (ADDRESSING, "wsa"),
    (WSMAN, "wsman"),
    (
        "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd",
        "wsmv",
    ),
    (SHELL, "rsp"),
    (XML, "xml"),
];

/// What pypsrp 0.9.1's sdist holds (its `_template.yml` is not a recording and is left out).
const FILES: usize = 66;
const PAIRS: usize = 521;
const SHELL_FILES: usize = 18;
const SHELL_PAIRS: usize = 111;
const SHELL_FAULTS: usize = 5;

/// Recorded replies whose `wsa:RelatesTo` names another message than their request's: pypsrp's
/// replay blanks every UUID, so its own tests never notice. kmsconf must refuse them; the test
/// checks it does, then reads them against the ID they name.
const MISMATCHED: &[(&str, usize)] = &[("test_winrs_unicode.yml", 4)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// In the recorded request, not in kmsconf's.
    Recorded,
    /// In kmsconf's request, not in the recorded one.
    Kmsconf,
}

/// The differences between kmsconf's requests and pypsrp's that are meant: (request, side,
/// item, a trailing `*` matching any end). Each one must still occur, so none outlives its
/// reason.
const ALLOWED: &[(Expect, Side, &str)] = &[
    // pypsrp names its client session in every request (MS-WSMV 2.2.4.37, optional,
    // mustUnderstand false); pywinrm sends none, and kmsconf has one shell per host per run
    (Expect::Create, Side::Recorded, "s:Header/wsmv:SessionId*"),
    (Expect::Command, Side::Recorded, "s:Header/wsmv:SessionId*"),
    (Expect::Send, Side::Recorded, "s:Header/wsmv:SessionId*"),
    (Expect::Receive, Side::Recorded, "s:Header/wsmv:SessionId*"),
    (Expect::Signal, Side::Recorded, "s:Header/wsmv:SessionId*"),
    (Expect::Delete, Side::Recorded, "s:Header/wsmv:SessionId*"),
    // kmsconf always asks for a shell without the user profile and with UTF-8 output; pypsrp
    // sends each option only when asked (test_winrs_noprofile, test_winrs_unicode), and marks
    // WINRS_NOPROFILE MustComply, which pywinrm does not
    (Expect::Create, Side::Kmsconf, "s:Header/wsman:OptionSet*"),
    (
        Expect::Create,
        Side::Recorded,
        "s:Header/wsman:OptionSet/wsman:Option[WINRS_NOPROFILE]@MustComply=true",
    ),
    // shell settings pypsrp offers and kmsconf does not use: environment, lifetime, name,
    // working directory (test_winrs_environment, test_winrs_extra_opts)
    (Expect::Create, Side::Recorded, "s:Body/rsp:Shell/rsp:Environment*"),
    // kmsconf always asks an idle time (the run's timeout), in the place and form pypsrp sends
    // it where asked (test_winrs_extra_opts: PT60S after the streams)
    (Expect::Create, Side::Kmsconf, "s:Body/rsp:Shell/rsp:IdleTimeOut*"),
    (Expect::Create, Side::Recorded, "s:Body/rsp:Shell/rsp:Lifetime*"),
    (Expect::Create, Side::Recorded, "s:Body/rsp:Shell/rsp:Name*"),
    (Expect::Create, Side::Recorded, "s:Body/rsp:Shell/rsp:WorkingDirectory*"),
    // stdin is a pipe: kmsconf says so (FALSE, as Ansible sends it when it pipes input); pypsrp's
    // recorded `powershell.exe -` Command leaves the option out, which also means a pipe
    (
        Expect::Command,
        Side::Kmsconf,
        "s:Header/wsman:OptionSet/wsman:Option[WINRS_CONSOLEMODE_STDIN]",
    ),
    // pypsrp asks the service to keep the shell alive on each Receive; pywinrm does not, and
    // kmsconf receives continuously, and sends a short Receive when idle for a quarter of the
    // shell's idle time
    (Expect::Receive, Side::Recorded, "s:Header/wsman:OptionSet*"),
    // pypsrp writes End="False" on every chunk and End="True" on the last; kmsconf writes the
    // xs:boolean `true` on the last only (false is the default)
    (Expect::Send, Side::Recorded, "s:Body/rsp:Send/rsp:Stream[stdin]@End=*"),
    (Expect::Send, Side::Kmsconf, "s:Body/rsp:Send/rsp:Stream[stdin]@End=true"),
    // pypsrp stops the process with ctrl_c; kmsconf, like pywinrm's cleanup_command, sends
    // terminate once the command is done
    (
        Expect::Signal,
        Side::Recorded,
        "s:Body/rsp:Signal/rsp:Code=http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c",
    ),
    (
        Expect::Signal,
        Side::Kmsconf,
        "s:Body/rsp:Signal/rsp:Code=http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate",
    ),
];

#[derive(Debug, Deserialize)]
struct Pair {
    file: String,
    index: usize,
    request: String,
    response: String,
    meta: serde_json::Value,
}

impl Pair {
    fn name(&self) -> String {
        format!("{} #{}", self.file, self.index)
    }

    /// The HTTP status the recording answered with: 500 for a fault, else 200.
    fn status(&self) -> u64 {
        self.meta["transport_error"]["code"].as_u64().unwrap_or(200)
    }
}

fn pairs() -> Vec<Pair> {
    let Ok(path) = std::env::var("KMSCONF_WSMAN_FIXTURES") else {
        panic!(
            "KMSCONF_WSMAN_FIXTURES is not set: run `bash scripts/test.sh`, which downloads \
             pypsrp's recorded WinRM traffic and points the variable at it"
        );
    };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read KMSCONF_WSMAN_FIXTURES `{path}`: {e}"));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("`{path}` is not the fixtures' JSON: {e}"))
}

/// A recorded shell request: what it asks, and the element holding each value.
struct Request<'a, 'i> {
    kind: Expect,
    doc: &'a Document<'i>,
}

impl<'a, 'i> Request<'a, 'i> {
    /// `None` for a request to another resource than `windows/shell/cmd`.
    fn read(doc: &'a Document<'i>) -> Option<Self> {
        if text(find(doc, WSMAN, "ResourceURI")?) != RESOURCE_URI {
            return None;
        }
        let action = text(find(doc, ADDRESSING, "Action")?);
        let kind = match action.rsplit('/').next() {
            Some("Create") => Expect::Create,
            Some("Command") => Expect::Command,
            Some("Send") => Expect::Send,
            Some("Receive") => Expect::Receive,
            Some("Signal") => Expect::Signal,
            Some("Delete") => Expect::Delete,
            _ => panic!("a shell request with the action `{action}`"),
        };
        Some(Self { kind, doc })
    }

    fn text(&self, ns: &str, name: &str) -> String {
        find(self.doc, ns, name)
            .map(text)
            .unwrap_or_default()
            .to_string()
    }

    fn attribute(&self, ns: &str, name: &str, attribute: &str) -> String {
        find(self.doc, ns, name)
            .and_then(|n| n.attribute(attribute))
            .unwrap_or_default()
            .to_string()
    }

    fn message_id(&self) -> String {
        self.text(ADDRESSING, "MessageID")
    }

    /// kmsconf's request for the same shell, command, data and limits.
    fn kmsconf(&self) -> String {
        let locale = find(self.doc, WSMAN, "Locale").and_then(|n| n.attribute((XML, "lang")));
        let ep = Endpoint {
            url: self.text(ADDRESSING, "To"),
            max_envelope_size: self.text(WSMAN, "MaxEnvelopeSize").parse().expect("a size"),
            operation_timeout: Duration::from_secs_f64(seconds(
                &self.text(WSMAN, "OperationTimeout"),
            )),
            locale: locale.unwrap_or_default().to_string(),
        };
        let id = self.message_id();
        let shell = self.text(WSMAN, "Selector");
        match self.kind {
            Expect::Create => {
                // the recorded idle time where pypsrp asked one, else the service's two hours
                let idle = match self.text(SHELL, "IdleTimeOut") {
                    t if t.is_empty() => Duration::from_secs(7200),
                    t => Duration::from_secs_f64(seconds(&t)),
                };
                wsman::create_shell(&ep, &id, idle)
            }
            Expect::Command => {
                let args: Vec<String> = self
                    .doc
                    .descendants()
                    .filter(|n| n.has_tag_name((SHELL, "Arguments")))
                    .map(|n| n.text().unwrap_or_default().to_string())
                    .collect();
                wsman::command(&ep, &id, &shell, &self.text(SHELL, "Command"), &args)
            }
            Expect::Send => {
                let data = BASE64
                    .decode(self.text(SHELL, "Stream"))
                    .expect("recorded stdin is base64");
                let end = self
                    .attribute(SHELL, "Stream", "End")
                    .eq_ignore_ascii_case("true");
                let command = self.attribute(SHELL, "Stream", "CommandId");
                wsman::send(&ep, &id, &shell, &command, &data, end)
            }
            Expect::Receive => {
                let command = self.attribute(SHELL, "DesiredStream", "CommandId");
                wsman::receive(&ep, &id, &shell, &command)
            }
            Expect::Signal => {
                let command = self.attribute(SHELL, "Signal", "CommandId");
                wsman::signal_terminate(&ep, &id, &shell, &command)
            }
            Expect::Delete => wsman::delete_shell(&ep, &id, &shell),
        }
    }
}

fn find<'a, 'i>(doc: &'a Document<'i>, ns: &str, name: &str) -> Option<Node<'a, 'i>> {
    doc.descendants().find(|n| n.has_tag_name((ns, name)))
}

fn text<'a>(node: Node<'a, '_>) -> &'a str {
    node.text().unwrap_or_default().trim()
}

/// The seconds of an `xs:duration` `PTnS` or `PTn.nnnS`.
fn seconds(duration: &str) -> f64 {
    duration
        .strip_prefix("PT")
        .and_then(|d| d.strip_suffix('S'))
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("`{duration}` is not a duration in seconds"))
}

/// A prefixed name for `ns`:`local`, the same whatever prefix the message used.
fn qualified(ns: Option<&str>, local: &str) -> String {
    match ns {
        None => local.to_string(),
        Some(ns) => match PREFIXES.iter().find(|(uri, _)| *uri == ns) {
            Some((_, prefix)) => format!("{prefix}:{local}"),
            None => format!("{{{ns}}}{local}"),
        },
    }
}

/// A request as a set of items: each element's path (a `Name` attribute in brackets, a
/// repeated element numbered), each attribute, each text. Values that differ from one message
/// to the next by nature are left out: the message ID, the session ID, the IDs of the shell
/// and command; the timeout is compared as seconds.
fn items(xml: &str) -> BTreeSet<String> {
    let doc = Document::parse(xml).expect("a request is XML");
    let mut out = BTreeSet::new();
    for top in doc.root_element().children().filter(Node::is_element) {
        walk(top, String::new(), &mut out);
    }
    out
}

fn walk(node: Node<'_, '_>, parent: String, out: &mut BTreeSet<String>) {
    let tag = node.tag_name();
    let mut path = format!("{parent}{}", qualified(tag.namespace(), tag.name()));
    if let Some(name) = node.attribute("Name") {
        path = format!("{path}[{name}]");
    }
    let same: Vec<_> = node
        .parent()
        .into_iter()
        .flat_map(|p| p.children())
        .filter(|n| n.tag_name() == tag && n.attribute("Name") == node.attribute("Name"))
        .collect();
    if same.len() > 1 {
        let at = same.iter().position(|n| *n == node).unwrap_or_default();
        path = format!("{path}#{}", at + 1);
    }
    out.insert(path.clone());
    for a in node.attributes() {
        if a.name() == "Name" || a.name() == "CommandId" {
            continue;
        }
        out.insert(format!(
            "{path}@{}={}",
            qualified(a.namespace(), a.name()),
            a.value()
        ));
    }
    let value = text(node);
    match tag.name() {
        _ if value.is_empty() || node.children().any(|c| c.is_element()) => {}
        "MessageID" | "SessionId" | "Selector" | "Option" => {}
        "OperationTimeout" => {
            out.insert(format!("{path}={}s", seconds(value)));
        }
        _ => {
            out.insert(format!("{path}={value}"));
        }
    }
    for child in node.children().filter(Node::is_element) {
        walk(child, format!("{path}/"), out);
    }
}

fn allowed(kind: Expect, side: Side, item: &str) -> Option<usize> {
    ALLOWED.iter().position(|(k, s, pattern)| {
        *k == kind
            && *s == side
            && pattern
                .strip_suffix('*')
                .map_or(*pattern == item, |start| item.starts_with(start))
    })
}

#[test]
fn every_recorded_shell_reply_is_read() {
    let pairs = pairs();
    let files: BTreeSet<&str> = pairs.iter().map(|p| p.file.as_str()).collect();
    let mut shell_files = BTreeSet::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut faults = Vec::new();
    let mut output = (0, 0, 0);
    let mut mismatched = 0;
    for pair in &pairs {
        let Ok(doc) = Document::parse(&pair.request) else {
            continue;
        };
        let Some(request) = Request::read(&doc) else {
            continue;
        };
        shell_files.insert(pair.file.as_str());
        *kinds.entry(request.kind.to_string()).or_default() += 1;
        let response = Document::parse(&pair.response).expect("a recorded reply is XML");
        let mut reply = wsman::parse(request.kind, &pair.response, &request.message_id());
        if MISMATCHED.contains(&(pair.file.as_str(), pair.index)) {
            let Err(ParseError::RelatesTo { found, .. }) = reply else {
                panic!(
                    "{}: a reply to another message was read: {reply:?}",
                    pair.name()
                );
            };
            mismatched += 1;
            reply = wsman::parse(request.kind, &pair.response, &found);
        }
        match reply {
            Err(ParseError::Fault(fault)) => {
                assert_eq!(pair.status(), 500, "{}: a fault with HTTP 200", pair.name());
                assert!(
                    !fault.code.is_empty() && !fault.message.is_empty(),
                    "{}",
                    pair.name()
                );
                let timed_out = fault.subcode.as_deref() == Some("w:TimedOut");
                assert_eq!(fault.is_timed_out(), timed_out, "{}", pair.name());
                println!("{} {:?}: {fault}", pair.name(), request.kind);
                faults.push(fault);
            }
            Err(e) => panic!("{}: {e}", pair.name()),
            Ok(reply) => {
                assert_eq!(
                    pair.status(),
                    200,
                    "{}: read, yet HTTP {}",
                    pair.name(),
                    pair.status()
                );
                check_reply(pair, &response, request.kind, reply, &mut output);
            }
        }
    }
    println!(
        "{} pairs in {} files; {} shell pairs in {} files: {kinds:?}; {} faults; \
         {} Receive replies with {} bytes of stdout, {} with an exit code",
        pairs.len(),
        files.len(),
        kinds.values().sum::<usize>(),
        shell_files.len(),
        faults.len(),
        output.0,
        output.1,
        output.2
    );
    assert_eq!((files.len(), pairs.len()), (FILES, PAIRS));
    assert_eq!(shell_files.len(), SHELL_FILES);
    assert_eq!(kinds.values().sum::<usize>(), SHELL_PAIRS);
    assert_eq!(faults.len(), SHELL_FAULTS);
    assert_eq!(faults.iter().filter(|f| f.is_timed_out()).count(), 2);
    assert_eq!(mismatched, MISMATCHED.len());
}

/// The reply read is what the XML holds, found here without the parser.
fn check_reply(
    pair: &Pair,
    doc: &Document<'_>,
    kind: Expect,
    reply: Reply,
    output: &mut (usize, usize, usize),
) {
    let name = pair.name();
    let texts = |local: &str| -> Vec<&str> {
        doc.descendants()
            .filter(|n| n.tag_name().name() == local)
            .map(text)
            .collect()
    };
    match (kind, reply) {
        (Expect::Create, Reply::Created { shell_id, idle }) => {
            assert_eq!(texts("ShellId"), [shell_id.as_str()], "{name}");
            assert_eq!(texts("Selector"), [shell_id.as_str()], "{name}");
            // the granted idle time, as Windows writes it (`PT7200.000S`, `PT60.000S`)
            let granted = texts("IdleTimeOut").first().map(|t| {
                let seconds = t
                    .strip_prefix("PT")
                    .and_then(|t| t.strip_suffix('S'))
                    .and_then(|t| t.parse::<f64>().ok())
                    .expect("a recorded IdleTimeOut is PTn.nnnS");
                std::time::Duration::from_secs_f64(seconds)
            });
            assert_eq!(idle, granted, "{name}");
        }
        (Expect::Command, Reply::CommandStarted { command_id }) => {
            assert_eq!(texts("CommandId"), [command_id.as_str()], "{name}");
        }
        (Expect::Receive, Reply::Received(r)) => {
            let stream = |wanted: &str| -> Vec<u8> {
                doc.descendants()
                    .filter(|n| {
                        n.tag_name().name() == "Stream" && n.attribute("Name") == Some(wanted)
                    })
                    .flat_map(|n| BASE64.decode(text(n)).expect("recorded output is base64"))
                    .collect()
            };
            assert_eq!(r.stdout, stream("stdout"), "{name}");
            assert_eq!(r.stderr, stream("stderr"), "{name}");
            let done = doc.descendants().any(|n| {
                n.attribute("State")
                    .is_some_and(|s| s.ends_with("/CommandState/Done"))
            });
            assert_eq!(r.done, done, "{name}");
            let code = texts("ExitCode")
                .first()
                .map(|c| c.parse::<i32>().expect("an exit code"));
            assert_eq!(r.exit_code, code.filter(|_| done), "{name}");
            output.0 += 1;
            output.1 += r.stdout.len();
            output.2 += usize::from(r.exit_code.is_some());
        }
        (Expect::Send, Reply::Sent)
        | (Expect::Signal, Reply::Signalled)
        | (Expect::Delete, Reply::Deleted) => {}
        (kind, reply) => panic!("{name}: a {kind} reply read as {reply:?}"),
    }
}

#[test]
fn kmsconf_requests_have_the_recorded_shape() {
    let pairs = pairs();
    let mut used = vec![0usize; ALLOWED.len()];
    let mut compared: BTreeMap<String, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    for pair in &pairs {
        let Ok(doc) = Document::parse(&pair.request) else {
            continue;
        };
        let Some(request) = Request::read(&doc) else {
            continue;
        };
        *compared.entry(request.kind.to_string()).or_default() += 1;
        let recorded = items(&pair.request);
        let ours = items(&request.kmsconf());
        let sides = [
            (Side::Recorded, recorded.difference(&ours)),
            (Side::Kmsconf, ours.difference(&recorded)),
        ];
        for (side, difference) in sides {
            for item in difference {
                match allowed(request.kind, side, item) {
                    Some(i) => used[i] += 1,
                    None => unexplained.push(format!(
                        "{} {:?}: only in the {side:?} request: {item}",
                        pair.name(),
                        request.kind
                    )),
                }
            }
        }
    }
    println!("shell requests compared: {compared:?}");
    for ((kind, side, item), n) in ALLOWED.iter().zip(&used) {
        println!("allowed {n:>3}x {kind} {side:?}: {item}");
    }
    assert!(
        unexplained.is_empty(),
        "kmsconf's requests differ from the recorded ones:\n{}",
        unexplained.join("\n")
    );
    let stale: Vec<_> = ALLOWED
        .iter()
        .zip(&used)
        .filter(|(_, n)| **n == 0)
        .collect();
    assert!(
        stale.is_empty(),
        "allowed differences that no longer occur: {stale:?}"
    );
    assert_eq!(compared.values().sum::<usize>(), SHELL_PAIRS);
}
