//! End-to-end tests: the real `kmsconf` binary against lab hosts in temporary directories.
//! One test binary (this crate) keeps the build short.

mod agent;
mod bounded;
mod common;
mod config_schema;
mod corpus;
mod day2;
mod dns;
mod docs;
mod examples;
mod export;
mod failures;
mod fleet;
mod gitops;
mod gss;
mod integrity;
mod metrics;
mod mit_kdc;
mod pipelines;
mod plan_apply;
mod quickstart;
mod readme;
mod recordings;
mod retire;
mod robustness;
mod schemas;
mod secrets;
mod ssh;
mod validate;
mod winrm;
