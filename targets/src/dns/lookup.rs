//! Plain lookups for a client that finds a service through DNS (the domain controller of
//! `[active_directory]`): one SRV RRset and the addresses of its targets, from whatever server
//! answers, authoritative or a recursive resolver, each lookup ended by the caller's deadline
//! (the run's). Nothing here orders the records: the caller does, by the rules of the service
//! it looks for.

use std::net::IpAddr;
use std::time::Instant;

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use super::protocol::{exchange_all_by, fqdn, plain};
use super::socket;
use super::DnsError;

/// One SRV record of the name looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// Lowercase, without the trailing dot; `""` for RFC 2782's `.` (no service).
    pub target: String,
}

/// The SRV records of `name` on `server` (`host[:port]`); empty when the name has none
/// (NXDOMAIN, or NOERROR without one). No answer by `deadline` is an error.
pub fn service_records(
    server: &str,
    name: &str,
    deadline: Instant,
) -> Result<Vec<ServiceRecord>, DnsError> {
    let address = socket::resolve(server)?;
    let query = Query::query(fqdn(name)?, RecordType::SRV);
    let answers = exchange_all_by(address, &[query], Some(deadline))?;
    let answer = answers.first().ok_or(DnsError::Truncated)?;
    check(answer, || format!("`{name}` SRV"))?;
    let owner = name.trim_end_matches('.').to_ascii_lowercase();
    Ok(answer
        .answers
        .iter()
        .filter(|r| plain(&r.name) == owner)
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(ServiceRecord {
                priority: srv.priority,
                weight: srv.weight,
                port: srv.port,
                target: plain(&srv.target),
            }),
            _ => None,
        })
        .collect())
}

/// The A and AAAA addresses of each of `names` on `server`, in one set of queries; a name the
/// server knows nothing of gets none. A resolver's answer that follows a CNAME counts. No
/// answer by `deadline` is an error.
pub fn addresses(
    server: &str,
    names: &[String],
    deadline: Instant,
) -> Result<Vec<Vec<IpAddr>>, DnsError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let address = socket::resolve(server)?;
    let mut queries = Vec::new();
    for name in names {
        for kind in [RecordType::A, RecordType::AAAA] {
            queries.push(Query::query(fqdn(name)?, kind));
        }
    }
    let answers = exchange_all_by(address, &queries, Some(deadline))?;
    let mut out = Vec::new();
    for (name, pair) in names.iter().zip(answers.chunks(2)) {
        let mut found = Vec::new();
        for answer in pair {
            check(answer, || format!("the addresses of `{name}`"))?;
            found.extend(answer.answers.iter().filter_map(|r| match &r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                RData::AAAA(a) => Some(IpAddr::V6(a.0)),
                _ => None,
            }));
        }
        out.push(found);
    }
    Ok(out)
}

/// An answer is usable when it is NOERROR or NXDOMAIN (the name does not exist).
fn check(answer: &Message, question: impl FnOnce() -> String) -> Result<(), DnsError> {
    match answer.metadata.response_code {
        ResponseCode::NoError | ResponseCode::NXDomain => Ok(()),
        code => Err(DnsError::Rcode {
            question: question(),
            code,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::OpCode;
    use hickory_proto::rr::rdata::SRV;
    use hickory_proto::rr::Record;

    #[test]
    fn a_refusal_is_an_error_naming_the_question_and_nxdomain_is_none() {
        let mut answer = Message::response(1, OpCode::Query);
        answer.add_answer(Record::from_rdata(
            fqdn("_ldap._tcp.dc._msdcs.corp.example").expect("name"),
            600,
            RData::SRV(SRV::new(
                0,
                100,
                389,
                fqdn("dc1.corp.example").expect("name"),
            )),
        ));
        assert!(check(&answer, || unreachable!()).is_ok());
        answer.metadata.response_code = ResponseCode::NXDomain;
        assert!(check(&answer, || unreachable!()).is_ok());
        answer.metadata.response_code = ResponseCode::Refused;
        let e = check(&answer, || "`x` SRV".into()).expect_err("refused");
        assert!(e.to_string().contains("`x` SRV"), "{e}");
        assert!(e.to_string().contains("REFUSED (5)"), "{e}");
    }
}
