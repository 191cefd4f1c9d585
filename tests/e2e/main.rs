//! End-to-end tests: the real `kmsconf` binary against lab hosts in temporary directories.
//! One test binary (this crate) keeps the build short.

mod agent;
mod common;
mod corpus;
mod day2;
mod dns;
mod examples;
mod export;
mod failures;
mod fleet;
mod gitops;
mod metrics;
mod pipelines;
mod plan_apply;
mod quickstart;
mod readme;
mod robustness;
mod schemas;
mod secrets;
mod ssh;
mod validate;
