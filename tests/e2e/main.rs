//! End-to-end tests: the real `kmsconf` binary against lab hosts in temporary directories.
//! One test binary (this crate) keeps the build short.

mod common;
mod examples;
mod export;
mod failures;
mod plan_apply;
mod secrets;
mod ssh;
mod validate;
