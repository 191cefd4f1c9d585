//! A small domain for the engine's own tests: string operations, numeric state.

use serde::{Deserialize, Serialize};

use crate::plan::{Domain, Verb};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TestVerb {
    Update,
}

impl Verb for TestVerb {
    const ALL: &'static [Self] = &[Self::Update];
    fn symbol(self) -> char {
        '~'
    }
    fn as_str(self) -> &'static str {
        "update"
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Test;

impl Domain for Test {
    type Op = String;
    type State = u32;
    type Target = String;
    type Action = TestVerb;
    const PLAN_KIND: &'static str = "test-plan";
    const FORMAT_VERSION: u32 = 3;
}
