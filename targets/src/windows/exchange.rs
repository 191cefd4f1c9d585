//! One round of requests to the agent and what came back for it: each answer is matched to its
//! request by ID and kind. Anything else (an ID of an earlier round or of no request, a second
//! answer, an answer of the wrong kind, a line over its cap, a round over its cap) is a protocol
//! error that ends the session, since no later answer could be trusted to be what it claims.

use crate::output::MAX_ROUND;
use crate::powershell::{self, AgentError, Answer, Request};
use crate::process::Finished;

/// What came back for a round of requests: per request, whether the agent began it and its
/// answer; how the session ended if it ended before answering them all; and the first line
/// the host sent that was an error of its own (a session refused for its language mode, an
/// unreadable answer, a protocol error), which then says why.
pub(super) struct Exchange {
    pub began: Vec<bool>,
    pub answers: Vec<Option<Answer>>,
    pub ended: Option<Finished>,
    pub refused: Option<AgentError>,
    /// The first request's ID; the round's IDs follow it.
    first: u64,
    /// The answer kind each request ends with.
    kinds: Vec<&'static str>,
    /// Bytes of output read in this round, against [`MAX_ROUND`].
    read: usize,
}

impl Exchange {
    pub fn new(requests: &[Request], first: u64) -> Self {
        Self {
            began: vec![false; requests.len()],
            answers: (0..requests.len()).map(|_| None).collect(),
            ended: None,
            refused: None,
            first,
            kinds: requests.iter().map(Request::answer_kind).collect(),
            read: 0,
        }
    }

    /// Whether a request still waits for its answer.
    pub fn waiting(&self) -> bool {
        self.answers.iter().any(Option::is_none)
    }

    /// Takes in one line of output of a session that has just been sent the agent: `Ok(true)`
    /// once it is the bootstrap's `ready` line. A banner is ignored, and a refusal (a damaged
    /// agent, the language mode) is kept in `refused`; any answer before `ready` is a protocol
    /// error, since no request has been sent.
    pub fn ready(&mut self, line: &str) -> Result<bool, AgentError> {
        self.read = self.read.saturating_add(line.len());
        if self.read > MAX_ROUND {
            return Err(AgentError::RoundTooLong);
        }
        match powershell::message(line) {
            Some(Ok(message)) if message.kind == powershell::READY => Ok(true),
            Some(Ok(message)) => Err(AgentError::Protocol(format!(
                "answer `{}` before the agent said it was ready, when no request had been sent",
                message.kind
            ))),
            Some(Err(e)) if e.ends_session() => {
                self.refused.get_or_insert(e);
                Ok(false)
            }
            // a line that does not decode: as in a round, nothing later can be trusted
            Some(Err(e)) => Err(e),
            None => Ok(false),
        }
    }

    /// Takes in one line of output: a `begin` marks its request started, an answer ends it; a
    /// line that is not an answer is ignored. `Err` is a protocol error: the session must end.
    pub fn read(&mut self, line: &str) -> Result<(), AgentError> {
        self.read = self.read.saturating_add(line.len());
        if self.read > MAX_ROUND {
            return Err(AgentError::RoundTooLong);
        }
        let message = match powershell::message(line) {
            Some(Ok(message)) => message,
            Some(Err(e)) if e.ends_session() => {
                self.refused.get_or_insert(e);
                return Ok(());
            }
            // an answer line that does not decode: no later line can be trusted to be what it
            // claims, and waiting for the answer it should have been would last the timeout
            Some(Err(e)) => return Err(e),
            None => return Ok(()),
        };
        let kind = message.kind.as_str();
        if kind == powershell::READY {
            return Err(AgentError::Protocol(
                "a second `ready` line, from an agent already running".into(),
            ));
        }
        let unreadable = |e: serde_json::Error| {
            AgentError::Protocol(format!(
                "answer `{kind}` is not the JSON kmsconf reads: {e}"
            ))
        };
        if kind == "begin" {
            let id = serde_json::from_str::<powershell::Begin>(&message.json)
                .map_err(unreadable)?
                .id;
            let i = self.slot(kind, Some(id))?;
            self.began[i] = true;
            return Ok(());
        }
        let answer = serde_json::from_str::<Answer>(&message.json).map_err(unreadable)?;
        let i = self.slot(kind, answer.id)?;
        if self.answers[i].is_some() {
            return Err(AgentError::Protocol(format!(
                "a second answer `{kind}` to request {}",
                self.first + i as u64
            )));
        }
        // `error`: the agent could not read the request, whatever it was
        if kind != "error" && kind != self.kinds[i] {
            return Err(AgentError::Protocol(format!(
                "answer `{kind}` to request {}, which asked for `{}`",
                self.first + i as u64,
                self.kinds[i]
            )));
        }
        self.answers[i] = Some(answer);
        Ok(())
    }

    /// The index of the request `id` names in this round. Only an `error` (a request the agent
    /// could not read, so could not take its ID from) may come without one: it answers the
    /// first request still waiting.
    fn slot(&self, kind: &str, id: Option<u64>) -> Result<usize, AgentError> {
        let count = self.answers.len() as u64;
        let Some(id) = id else {
            return match self.answers.iter().position(Option::is_none) {
                Some(i) if kind == "error" => Ok(i),
                _ => Err(AgentError::Protocol(format!(
                    "answer `{kind}` without an ID"
                ))),
            };
        };
        match id.checked_sub(self.first) {
            Some(i) if i < count => usize::try_from(i).map_err(|_| self.stray(kind, id)),
            _ => Err(self.stray(kind, id)),
        }
    }

    fn stray(&self, kind: &str, id: u64) -> AgentError {
        let round = match self.answers.len() as u64 {
            0 => "no request".to_string(),
            1 => format!("request {}", self.first),
            n => format!("requests {} to {}", self.first, self.first + n - 1),
        };
        let earlier = if id < self.first {
            ", an ID of an earlier round"
        } else {
            ""
        };
        AgentError::Protocol(format!(
            "answer `{kind}` has ID {id}{earlier}, but this round asked {round}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use proptest::prelude::*;

    fn line(kind: &str, json: &str) -> String {
        let data = base64::engine::general_purpose::STANDARD.encode(json);
        format!("KMSCONF:{kind}:{data}\n")
    }

    fn round() -> Exchange {
        Exchange::new(&[Request::discover(), Request::lock("{}")], 5)
    }

    fn refused(exchange: &mut Exchange, text: &str) -> String {
        exchange.read(text).expect_err("refused").to_string()
    }

    #[test]
    fn an_answer_line_that_does_not_decode_ends_the_round_quoted_cut() {
        let e = refused(&mut round(), "KMSCONF:discovery:!!!\n");
        assert!(e.contains("answer `discovery` is not base64"), "{e}");
        let data = base64::engine::general_purpose::STANDARD.encode(b"{\"Id\":5,\xff}");
        let e = refused(&mut round(), &format!("KMSCONF:discovery:{data}\n"));
        assert_eq!(e, "answer `discovery` is not UTF-8");
        let long = format!("KMSCONF:{}\n", "x".repeat(100_000));
        let e = refused(&mut round(), &long);
        assert!(e.len() < 200 && e.ends_with("… (100000 bytes)`"), "{e}");
        let e = refused(&mut round(), &format!("KMSCONF:{}:e30=\n", "k".repeat(50)));
        assert!(e.starts_with("malformed answer line"), "{e}");
    }

    #[test]
    fn answers_are_matched_by_id_and_kind() {
        let mut x = round();
        x.read(&line("begin", r#"{"Id":6}"#)).expect("begin");
        x.read("a banner\n").expect("ignored");
        x.read(&line("lock", r#"{"Id":6,"Ok":true}"#))
            .expect("lock");
        assert!(x.waiting() && x.began[1] && x.answers[1].is_some());
        x.read(&line("error", r#"{"Id":null,"Ok":false,"Message":"x"}"#))
            .expect("error answers the first one waiting");
        assert!(!x.waiting());
    }

    #[test]
    fn no_answer_comes_before_the_bootstrap_says_ready() {
        let mut x = round();
        assert!(!x
            .ready("Windows PowerShell banner\n")
            .expect("a banner is ignored"));
        assert!(x.ready(&line("ready", "{}")).expect("ready"));
        assert_eq!(powershell::READY_LINE, line("ready", "{}").trim_end());
        let e = round()
            .ready(&line("discovery", r#"{"Id":5,"Ok":true}"#))
            .expect_err("an answer before ready")
            .to_string();
        assert!(
            e.contains("answer `discovery` before the agent said it was ready"),
            "{e}"
        );
        // a refusal is kept, and the session ends on it
        let mut x = round();
        assert!(!x
            .ready("KMSCONF-LANGUAGE-MODE:ConstrainedLanguage\n")
            .expect("kept"));
        assert!(x.refused.as_ref().is_some_and(AgentError::ends_session));
        let e = refused(&mut round(), &line("ready", "{}"));
        assert!(e.contains("a second `ready` line"), "{e}");
        let e = round()
            .ready("KMSCONF:ready:!!!\n")
            .expect_err("undecodable")
            .to_string();
        assert!(e.contains("answer `ready` is not base64"), "{e}");
    }

    #[test]
    fn anything_unasked_for_is_a_protocol_error_that_says_what_it_was() {
        let e = refused(&mut round(), &line("result", r#"{"Id":2,"Ok":true}"#));
        assert!(e.contains("answer `result` has ID 2, an ID of an earlier round, but this round asked requests 5 to 6"), "{e}");
        let e = refused(&mut round(), &line("begin", r#"{"Id":99}"#));
        assert!(
            e.contains("ID 99, but this round asked requests 5 to 6"),
            "{e}"
        );
        let e = refused(&mut round(), &line("lock", r#"{"Id":5,"Ok":true}"#));
        assert!(
            e.contains("answer `lock` to request 5, which asked for `discovery`"),
            "{e}"
        );
        let e = refused(&mut round(), &line("result", r#"{"Ok":true}"#));
        assert!(e.contains("answer `result` without an ID"), "{e}");
        let mut x = round();
        x.read(&line("lock", r#"{"Id":6,"Ok":true}"#))
            .expect("lock");
        let e = refused(&mut x, &line("lock", r#"{"Id":6,"Ok":false}"#));
        assert!(e.contains("a second answer `lock` to request 6"), "{e}");
        assert!(e.ends_with("so kmsconf ended the session"), "{e}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        /// Any line at all: ignored, taken, or refused; never a panic, never an answer in a
        /// slot it does not name.
        #[test]
        fn arbitrary_lines_never_panic(text in "(KMSCONF:)?[a-z]{0,8}:?[A-Za-z0-9+/=]{0,64}\n?") {
            let mut x = round();
            let _ = x.read(&text);
        }

        /// Any bytes as an answer's payload (not UTF-8, NULs, JSON nested thousands deep):
        /// taken or refused, never a panic or a stack overflow, and a refusal is a protocol
        /// error that ends the round, never a wait for the timeout.
        #[test]
        fn arbitrary_answer_payloads_are_taken_or_refused(
            kind in prop_oneof![Just("begin"), Just("discovery"), Just("lock"), Just("error")],
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            depth in 0usize..20_000,
        ) {
            let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
            let mut x = round();
            let _ = x.read(&format!("KMSCONF:{kind}:{data}\n"));
            let nested = format!(r#"{{"Id":5,"Ok":true,"Answer":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            let mut x = round();
            let read = x.read(&line(kind, &nested));
            prop_assert!(read.is_ok() || !x.answers.iter().any(Option::is_some));
        }

        /// Arbitrary IDs and kinds: an answer lands only in the slot of its own ID and kind.
        #[test]
        fn answers_land_only_where_they_belong(
            id in prop_oneof![0u64..12, any::<u64>()],
            kind in prop_oneof![Just("discovery"), Just("lock"), Just("result"), Just("unlock"), Just("error")],
        ) {
            let mut x = round();
            let taken = x.read(&line(kind, &format!(r#"{{"Id":{id},"Ok":true}}"#))).is_ok();
            let expected = match id {
                5 => kind == "discovery" || kind == "error",
                6 => kind == "lock" || kind == "error",
                _ => false,
            };
            prop_assert_eq!(taken, expected);
            if let Some(i) = x.answers.iter().position(Option::is_some) {
                prop_assert_eq!(i as u64 + 5, id);
            }
        }
    }
}
