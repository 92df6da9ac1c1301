//! SIGHUP: the policy file and the revocation list are read again. A file that no longer loads
//! leaves the previous one in force and is reported (`policy.rejected`, an alarm).

use super::main_loop::Loop;
use super::state::revocation::RevocationList;
use crate::access::PolicyRules;
use crate::error_chain;
use crate::event::{EventKind, NewEvent, Outcome, Reason, Timestamp};

impl Loop {
    pub(super) fn reload(&mut self) {
        self.notifier.reloading();
        if let Some(path) = &self.policy_path {
            match PolicyRules::load(path, &self.door_names) {
                Ok(rules) => {
                    // The site policy keeps its anti-passback memory across a reload.
                    let policy = self.access.policy().clone().with_rules(rules);
                    self.access.set_policy(policy);
                    self.publish(
                        NewEvent::new(EventKind::PolicyLoaded, Timestamp::now())
                            .result(Outcome::Info),
                    );
                }
                Err(error) => {
                    let reason = error_chain(&error);
                    tracing::error!(error = %reason, "policy not reloaded; the previous one stays in force");
                    self.publish(
                        NewEvent::new(EventKind::PolicyRejected, Timestamp::now())
                            .result(Outcome::Alarm)
                            .reason(Reason::INVALID_FILE)
                            .detail(reason),
                    );
                }
            }
        }
        if let Some(path) = &self.revocation_path {
            match RevocationList::load(path) {
                Ok(list) => {
                    self.revocation = list;
                    self.access.set_revoked(self.revocation.cards().clone());
                }
                Err(error) => {
                    let reason = error_chain(&error);
                    tracing::error!(error = %reason, "revocation list not reloaded; the previous one stays in force");
                    self.publish(
                        NewEvent::new(EventKind::PolicyRejected, Timestamp::now())
                            .result(Outcome::Alarm)
                            .reason(Reason::INVALID_FILE)
                            .detail(reason),
                    );
                }
            }
        }
        self.notifier.ready("gate ready (reloaded)");
    }
}
