//! Consent and the enrolment audit log.
//!
//! The audit log is a file of JSON lines, one record per line, appended by the enrolment station.
//! A record says what happened to which card and when; it never holds biometric data (no image,
//! template, distance or score: the types below have no field that could).

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::event::{CardId, Timestamp};

/// The consent notice shown to the person when the site gives none (`--consent-file`).
pub const DEFAULT_CONSENT_TEXT: &str = "\
Palm enrolment: consent
- Images of your palm are taken now, only to make a palm template.
- The template is written onto YOUR card and nowhere else: the gate asks your card whether your
  palm matches and gets only a yes or no. Images are not kept.
- The site records that you consented, when, and your card number; no biometric data.
- You can withdraw at any time: the site erases the template from your card and gives you a
  signed deletion receipt. Without consent, ask the site for another way in.
";

/// SHA-256 of the exact consent text shown (UTF-8 bytes), in lower-case hex.
pub fn consent_hash(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Whether an answer to the consent question is an explicit yes (`y` or `yes`, any case). Anything
/// else, an empty line included, is a no: consent is never assumed.
pub fn consent_answer(line: &str) -> bool {
    matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// How consent was confirmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    /// The operator answered `yes` at the station's prompt.
    Prompt,
    /// The operator passed `--consent-confirmed` (non-interactive use).
    Flag,
}

/// An enrolled slot, as recorded (its kind only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SlotRecord {
    /// Slot index on the card.
    pub slot: u8,
    /// `normal` or `duress`.
    pub kind: &'static str,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind")]
#[non_exhaustive]
pub enum AuditRecord {
    /// The person consented to enrolment.
    #[serde(rename = "enrol.consent")]
    Consent {
        /// When consent was given (UTC).
        time: Timestamp,
        /// The card enrolled.
        card_id: CardId,
        /// SHA-256 (hex) of the consent text shown.
        consent_text_sha256: String,
        /// How consent was confirmed.
        method: ConsentMethod,
        /// Whether a duress hand is enrolled too.
        duress_hand: bool,
    },
    /// A card's templates were erased before re-enrolment.
    #[serde(rename = "card.erased")]
    CardErased {
        /// When (UTC).
        time: Timestamp,
        /// The card.
        card_id: CardId,
        /// The card's erase counter (from the signed receipt).
        erase_counter: u32,
        /// Slots erased.
        slots_erased: u8,
        /// File holding the signed deletion receipt (with the card certificate).
        receipt_file: String,
        /// SHA-256 (hex) of that file.
        receipt_sha256: String,
    },
    /// Enrolment finished.
    #[serde(rename = "enrol.completed")]
    Completed {
        /// When (UTC).
        time: Timestamp,
        /// The card.
        card_id: CardId,
        /// Whether the card was personalised by this enrolment.
        personalised: bool,
        /// The slots written.
        slots: Vec<SlotRecord>,
        /// The profile floor written with them (absent: none).
        #[serde(skip_serializing_if = "Option::is_none")]
        profile_floor: Option<&'static str>,
        /// Whether the final verification on the card matched.
        verified: bool,
    },
}

impl AuditRecord {
    /// The record as one JSON line, newline included.
    pub fn to_line(&self) -> String {
        // Serialising these plain fields cannot fail; keep a line even if it somehow did.
        let mut line = serde_json::to_string(self)
            .unwrap_or_else(|error| format!("{{\"kind\":\"audit.error\",\"error\":\"{error}\"}}"));
        line.push('\n');
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card() -> CardId {
        CardId::from_hex("00112233445566778899aabbccddeeff").expect("card id")
    }

    #[test]
    fn consent_hash_is_sha256_of_the_text() {
        // FIPS 180-2 test vector.
        assert_eq!(
            consent_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_ne!(
            consent_hash(DEFAULT_CONSENT_TEXT),
            consent_hash(&DEFAULT_CONSENT_TEXT.replace("YOUR", "your"))
        );
    }

    #[test]
    fn only_an_explicit_yes_is_consent() {
        for yes in ["y", "Y", "yes", "YES\n", "  yes  "] {
            assert!(consent_answer(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "ye", "yes please", "oui", "1", "true"] {
            assert!(!consent_answer(no), "{no:?}");
        }
    }

    #[test]
    fn consent_line_has_the_hash_time_and_card() {
        let record = AuditRecord::Consent {
            time: Timestamp::from_unix_ms(1_795_000_000_123),
            card_id: card(),
            consent_text_sha256: consent_hash("text"),
            method: ConsentMethod::Flag,
            duress_hand: false,
        };
        let line = record.to_line();
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
        let value: serde_json::Value = serde_json::from_str(&line).expect("json");
        assert_eq!(value["kind"], "enrol.consent");
        assert_eq!(value["time"], "2026-11-18T11:06:40.123Z");
        assert_eq!(value["card_id"], "00112233445566778899aabbccddeeff");
        assert_eq!(value["consent_text_sha256"], consent_hash("text"));
        assert_eq!(value["method"], "flag");
        assert_eq!(value["duress_hand"], false);
        assert_eq!(value.as_object().map(serde_json::Map::len), Some(6));
    }

    #[test]
    fn erased_and_completed_lines() {
        let erased = AuditRecord::CardErased {
            time: Timestamp::from_unix_ms(0),
            card_id: card(),
            erase_counter: 3,
            slots_erased: 2,
            receipt_file: "/var/lib/palmgate/enrolment/receipt.bin".to_string(),
            receipt_sha256: consent_hash("receipt"),
        };
        let value: serde_json::Value = serde_json::from_str(&erased.to_line()).expect("json");
        assert_eq!(value["kind"], "card.erased");
        assert_eq!(value["erase_counter"], 3);
        assert_eq!(value["slots_erased"], 2);
        let completed = |profile_floor| AuditRecord::Completed {
            time: Timestamp::from_unix_ms(0),
            card_id: card(),
            personalised: true,
            slots: vec![
                SlotRecord {
                    slot: 0,
                    kind: "normal",
                },
                SlotRecord {
                    slot: 1,
                    kind: "duress",
                },
            ],
            profile_floor,
            verified: true,
        };
        let value: serde_json::Value =
            serde_json::from_str(&completed(None).to_line()).expect("json");
        assert_eq!(value["kind"], "enrol.completed");
        assert_eq!(value["slots"][1]["kind"], "duress");
        assert_eq!(value["verified"], true);
        assert!(value.get("profile_floor").is_none(), "no floor, no field");
        let value: serde_json::Value =
            serde_json::from_str(&completed(Some("security")).to_line()).expect("json");
        assert_eq!(value["profile_floor"], "security");
    }
}
