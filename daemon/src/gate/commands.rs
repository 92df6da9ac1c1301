//! Signed remote commands, already verified by the link: unlock, lockdown and release of a door or
//! the whole gate, and revocation list updates. Which doors a command addresses, and its refusal
//! when it names a door this gate does not have, are decided by the I/O-free
//! [`addressed_doors`]; lockdown is recorded durably ([`super::state::lockdown`]).

use std::collections::BTreeSet;
use std::time::Duration;

use super::main_loop::Loop;
use super::state::revocation::RevocationError;
use crate::access::Input;
use crate::error_chain;
use crate::event::{EventKind, NewEvent, Outcome, Reason, Timestamp};
use crate::mqtt::{Command, VerifiedCommand};

/// The doors a command addresses: the named door, or every door of the gate when none is named.
///
/// # Errors
/// The refusal's reason, when the command names a door this gate does not have.
pub fn addressed_doors(
    door: Option<&str>,
    doors: &BTreeSet<String>,
) -> Result<Vec<String>, String> {
    match door {
        Some(name) if doors.contains(name) => Ok(vec![name.to_string()]),
        Some(name) => Err(format!("no door named \"{name}\"")),
        None => Ok(doors.iter().cloned().collect()),
    }
}

/// The event for a refused command `name`: a reason code and the words for people.
pub fn refused_command(name: &str, reason: Reason, detail: &str) -> NewEvent {
    NewEvent::new(EventKind::CommandRefused, Timestamp::now())
        .result(Outcome::Refused)
        .reason(reason)
        .detail(format!("{name}: {detail}"))
}

impl Loop {
    pub(super) fn command(&mut self, verified: VerifiedCommand) {
        tracing::info!(command = verified.command.name(), operator = %verified.operator, "remote command");
        let retained_state = verified.retained_state;
        match verified.command {
            Command::Unlock { door, duration_s } => {
                match addressed_doors(Some(&door), &self.door_names) {
                    Ok(_) => self.input(Input::RemoteUnlock {
                        door,
                        unlock: duration_s.map(|seconds| Duration::from_secs(u64::from(seconds))),
                    }),
                    Err(detail) => {
                        self.publish(refused_command("unlock", Reason::UNKNOWN_DOOR, &detail))
                    }
                }
            }
            Command::Lockdown { door } => self.lockdown(door, true),
            Command::Release { door } => self.lockdown(door, false),
            Command::RevocationList { version, cards } => {
                match self.revocation.replace(
                    version,
                    cards.into_iter().collect(),
                    self.revocation_path.as_deref(),
                ) {
                    Ok(()) => {
                        self.access.set_revoked(self.revocation.cards().clone());
                        let event = NewEvent::new(EventKind::RevocationUpdated, Timestamp::now())
                            .result(Outcome::Accepted)
                            .detail(format!(
                                "version {version}, {} cards revoked",
                                self.revocation.cards().len()
                            ));
                        self.publish(event);
                    }
                    // The broker's retained copy of a list this gate already has (or of an older
                    // one, which cannot un-revoke a card): nothing happened, nothing to report.
                    Err(error @ RevocationError::NotNewer { .. }) if retained_state => {
                        tracing::debug!(error = %error_chain(&error), "retained revocation list already applied");
                    }
                    Err(error) => self.publish(refused_command(
                        "revocation_list",
                        if matches!(error, RevocationError::NotNewer { .. }) {
                            Reason::NOT_NEWER
                        } else {
                            Reason::NOT_STORED
                        },
                        &error_chain(&error),
                    )),
                }
            }
        }
    }

    /// `lockdown` (`on`) or `release` of one door, or of every door when `door` is `None`. Lockdown
    /// is a state of each door: a gate-wide command sets or clears it on every door, a door's
    /// command on that door only (so `release door=X` during a gate-wide lockdown reopens X and
    /// nothing else). The door controller reports each door that changes.
    fn lockdown(&mut self, door: Option<String>, on: bool) {
        let command = if on { "lockdown" } else { "release" };
        let doors = match addressed_doors(door.as_deref(), &self.door_names) {
            Ok(doors) => doors,
            Err(detail) => {
                return self.publish(refused_command(command, Reason::UNKNOWN_DOOR, &detail));
            }
        };
        if let Err(error) = self.door_handle.set_lockdown(door.as_deref(), on) {
            tracing::error!(error = %error_chain(&error), door = door.as_deref().unwrap_or("*"), "cannot {command}");
        }
        for door in doors {
            self.input(Input::Lockdown { door, on });
        }
        // In force already; a failure to record it only matters at the next start.
        if let Err(error) = self.lockdown_file.save(self.access.doors_in_lockdown()) {
            tracing::error!(error = %error_chain(&error), "cannot record the doors in lockdown: a restart would lift the lockdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doors(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| (*name).to_string()).collect()
    }

    #[test]
    fn a_command_addresses_its_door_or_every_door() {
        let gate = doors(&["back", "main"]);
        assert_eq!(
            addressed_doors(Some("main"), &gate),
            Ok(vec!["main".to_string()])
        );
        assert_eq!(
            addressed_doors(None, &gate),
            Ok(vec!["back".to_string(), "main".to_string()])
        );
    }

    #[test]
    fn a_command_for_a_door_the_gate_does_not_have_is_refused_with_its_name() {
        let gate = doors(&["main"]);
        assert_eq!(
            addressed_doors(Some("side"), &gate),
            Err("no door named \"side\"".to_string())
        );
        let event = refused_command("unlock", Reason::UNKNOWN_DOOR, "no door named \"side\"");
        assert_eq!(event.kind, EventKind::CommandRefused);
        assert_eq!(event.result, Some(Outcome::Refused));
        assert_eq!(event.reason, Some(Reason::UNKNOWN_DOOR));
        assert_eq!(
            event.detail.as_deref(),
            Some("unlock: no door named \"side\"")
        );
    }
}
