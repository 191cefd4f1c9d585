//! The controls of simulated lab hosts for `kmsconf lab`: change a lab host's state file under
//! its lock, record simulated client requests, list what the host counts, serve the agent
//! protocol and hold the KMS ports open. The lab target itself lives in `kmsconf-targets`.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use kmsconf_model::clock;
use kmsconf_model::config::ProductId;
use kmsconf_targets::lab::{self, clients};

use crate::Error;

pub use lab::agent::Served;
pub use lab::clients::{Added, DnsFailure, NewRequests};
pub use lab::listen::Opened;
pub use lab::{confirmation_id_for as confirmation_id, Fault, LabFile, MAX_LATENCY_MS};

/// Changes a lab file under its lock (creating a fresh host if there is none); returns what
/// `f` returned and whether the host was created.
pub fn control<R>(path: &Path, f: impl FnOnce(&mut LabFile) -> R) -> Result<(R, bool), Error> {
    Ok(lab::with_lab_file(path, true, |file| Ok(f(file)))?)
}

/// Records simulated activation requests in `file`, received now by the host's clock; returns
/// what the host made of them.
pub fn add_clients(file: &mut LabFile, new: &NewRequests) -> Result<Added, Error> {
    clients::add(file, new, clock::now()).map_err(|e| Error::Clients(e.to_string()))
}

/// The lab host's clock now.
pub fn host_now(file: &LabFile) -> i64 {
    clients::host_now(file, clock::now())
}

/// One client the host counts: its CMID and how long ago, by the host's clock, it asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedClient {
    pub cmid: String,
    pub ago_seconds: i64,
}

/// The clients the lab host counts now, per product that counts any.
pub fn counted_clients(path: &Path) -> Result<Vec<(ProductId, Vec<CountedClient>)>, Error> {
    let file = lab::load(path)?;
    let now = clients::host_now(&file, clock::now());
    let per_product = ProductId::ALL.into_iter().filter_map(|product| {
        let counted: Vec<CountedClient> = clients::counted(&file.clients, product, now)
            .into_iter()
            .map(|r| CountedClient {
                cmid: r.cmid.clone(),
                ago_seconds: now.saturating_sub(r.at),
            })
            .collect();
        (!counted.is_empty()).then_some((product, counted))
    });
    Ok(per_product.collect())
}

/// The lab host's state file as it is.
pub fn show(path: &Path) -> Result<LabFile, Error> {
    Ok(lab::load(path)?)
}

/// Speaks the Windows agent's protocol on `input` and `output` for the lab host at `path`.
pub fn serve_agent(path: &Path, input: impl BufRead, output: impl Write) -> Result<Served, Error> {
    Ok(lab::agent::serve(path, input, output)?)
}

/// Opens each lab host's KMS port in effect on 127.0.0.1, or says why not.
pub fn listen(paths: &[PathBuf]) -> Result<Vec<Opened>, Error> {
    Ok(lab::listen::open(paths)?)
}
