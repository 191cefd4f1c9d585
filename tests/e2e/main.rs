//! End-to-end tests: the real `kmsconf` binary against lab hosts in temporary directories.
//! One test binary (this crate) keeps the build short.

mod common;
mod examples;
mod failures;
mod gitops;
mod pipelines;
mod plan_apply;
mod secrets;
mod validate;
