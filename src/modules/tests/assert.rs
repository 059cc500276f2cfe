//! `assert` over the fake host: judged on the control side, nothing sent.

use super::{Lab, State};
use crate::report::Status;

#[tokio::test]
async fn conditions_that_hold_are_ok_and_one_that_does_not_fails_with_its_message() {
    let lab = Lab::new(State::new());
    let run = lab
        .run("assert: { that: [\"facts.init == 'systemd'\", \"inventory_hostname == 'a'\"] }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (Status::Ok, "2 condition(s) hold")
    );
    assert!(run.sent.is_empty(), "{run:?}");
    let run = lab
        .check("assert: { that: [\"facts.ipvs == 'missing'\"], msg: this host has IPVS }")
        .await;
    assert_eq!(
        (run.status, run.msg.as_str()),
        (
            Status::Failed,
            "this host has IPVS: `facts.ipvs == 'missing'` is false"
        )
    );
}
