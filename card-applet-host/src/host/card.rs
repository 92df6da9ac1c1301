//! The high-level card API used by the gate daemon and the enrolment station.
//!
//! ```text
//! Card::open(transport) / Card::connect(reader_pattern)     SELECT → identity
//!   .verify_certificate(&issuers) -> VerifiedCard            GET DATA certificate, issuer signature
//!   .profile_floor() -> Option<Profile>                      GET DATA profile floor (applet 1.5)
//!   .open_session(&verified) -> SecureSession               OPEN SECURE SESSION, key confirmation
//!       .verify_palm(&probe) -> VerifyOutcome               VERIFY PALM (default profile)
//!       .verify_palm_under(profile, &probe)                  VERIFY PALM, P1 = profile
//!       .verify_palm_posed(profile, &probe.poses)            VERIFY PALM of 1–5 probe poses
//!       .redeem_meal(&request) -> MealOutcome               REDEEM MEAL (after a match)
//!       .recover_meal_receipt() -> Option<MealReceipt>      GET RECEIPT (after a torn REDEEM MEAL)
//!       .prove_authority(&authority) -> EnrolmentSession    PROVE AUTHORITY
//!           .enrol / .set_profile_floor / .set_policy / .reset_retry_counter / .erase
//!           .last_receipt / .recover_erase_receipt             GET RECEIPT (after a torn ERASE)
//!   .personalise(&issuer_key) -> CardCertificate            factory state only
//! ```
//! Operations that need a session exist only on the session types; those that need an enrolment
//! authority only on [`EnrolmentSession`].

use p256::ecdsa::VerifyingKey;
use p256::elliptic_curve::Generate;
use palmgate_matcher::Profile;
use palmgate_matcher::template::Template;
use zeroize::Zeroizing;

use crate::host::apdu::{Command, Data, LengthMode, exchange};
use crate::host::commands::{
    Enrol, Erase, GenerateCardKey, GetCertificate, GetIdentity, GetProfileFloor, GetReceipt,
    InstallCertificate, KeptReceipt, MealAnswer, OpenSession, PlainCommand, ProveAuthority,
    RedeemMeal, ResetRetryCounter, SecureCommand, Select, SetPolicy, SetProfileFloor,
    VerifyOutcome, VerifyPalm,
};
use crate::host::error::{CardError, MealReceiptError};
use crate::host::issuer::{EnrolmentAuthority, IssuerKey, IssuerPublicKey};
use crate::host::meal::{MealOutcome, MealReceipt};
use crate::host::platform::system_rng;
use crate::host::transport::CardTransport;
use crate::protocol::cert::{CardCertificate, CertError, encode_public_key};
use crate::protocol::identity::CardIdentity;
use crate::protocol::meal::{MealRequest, SignedMealReceipt};
use crate::protocol::receipt::DeletionReceipt;
use crate::protocol::session::{SecureChannel, SessionKeys, ecdh, transcript_hash};
use crate::protocol::{
    CARD_ID_LEN, Lifecycle, MAX_PROBE_POSES, MAX_TRIES_LIMIT, MEAL_APPLET_VERSION, NONCE_LEN,
    POSED_VERIFY_APPLET_VERSION, PROFILE_FLOOR_APPLET_VERSION, SlotKind, StatusWord, TAG_LEN,
    TEMPLATE_LEN, cla, ins, verify_profile,
};

/// A selected palmgate card.
pub struct Card<T> {
    transport: T,
    mode: LengthMode,
    identity: CardIdentity,
    apdus: u64,
}

impl<T> std::fmt::Debug for Card<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("identity", &self.identity)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A card whose certificate verified against a configured issuer.
#[derive(Debug, Clone)]
pub struct VerifiedCard {
    /// The certificate.
    pub certificate: CardCertificate,
    /// Card id (from the certificate).
    pub card_id: [u8; CARD_ID_LEN],
    /// The issuer that signed it.
    pub issuer: IssuerPublicKey,
    card_public_key: VerifyingKey,
}

impl<T: CardTransport> Card<T> {
    /// SELECTs the applet over `transport` (extended-length APDUs).
    pub fn open(transport: T) -> Result<Self, CardError> {
        Self::open_with_mode(transport, LengthMode::Extended)
    }

    /// SELECTs the applet, choosing how long commands are sent.
    pub fn open_with_mode(transport: T, mode: LengthMode) -> Result<Self, CardError> {
        let mut card = Self {
            transport,
            mode,
            identity: CardIdentity {
                card_id: [0; CARD_ID_LEN],
                applet_version: (0, 0),
                lifecycle: Lifecycle::Factory,
                algorithm: 0,
                slots_used: 0,
                slot_capacity: 0,
                tries_left: 0,
                max_tries: 0,
            },
            apdus: 0,
        };
        card.identity = card.execute(&Select)?;
        Ok(card)
    }

    /// Runs one plain command.
    pub fn execute<C: PlainCommand>(&mut self, command: &C) -> Result<C::Output, CardError> {
        let response = exchange(
            &mut self.transport,
            &command.command(),
            self.mode,
            &mut self.apdus,
            C::NAME,
        )?;
        C::decode(response)
    }

    /// The identity read at SELECT (or at the last [`Card::refresh_identity`]).
    pub fn identity(&self) -> &CardIdentity {
        &self.identity
    }

    /// How many of `given` probe poses this card's VERIFY PALM compares: all of them from applet
    /// 1.4 on ([`MAX_PROBE_POSES`] at most), one before.
    pub fn probe_poses_compared(&self, given: usize) -> usize {
        if self.identity.applet_version < POSED_VERIFY_APPLET_VERSION {
            given.min(1)
        } else {
            given.min(MAX_PROBE_POSES)
        }
    }

    /// Whether this card keeps a profile floor (applet 1.5 and later).
    pub fn keeps_profile_floor(&self) -> bool {
        self.identity.applet_version >= PROFILE_FLOOR_APPLET_VERSION
    }

    /// The card's profile floor (GET DATA `0103`, not authenticated: the card enforces it, the
    /// host only shows it): `None` when none is set, and for a card before applet 1.5, which
    /// keeps none (nothing is sent; see [`Card::keeps_profile_floor`]).
    pub fn profile_floor(&mut self) -> Result<Option<Profile>, CardError> {
        if !self.keeps_profile_floor() {
            return Ok(None);
        }
        self.execute(&GetProfileFloor)
    }

    /// Reads the identity again (tries left changes after verifications).
    pub fn refresh_identity(&mut self) -> Result<CardIdentity, CardError> {
        self.identity = self.execute(&GetIdentity)?;
        Ok(self.identity)
    }

    /// Reads the card certificate (not verified).
    pub fn certificate(&mut self) -> Result<CardCertificate, CardError> {
        self.execute(&GetCertificate)
    }

    /// Reads the certificate and verifies it against the configured issuers; also checks that it
    /// names this card. Possession of the certified key is proven later, by the session.
    pub fn verify_certificate(
        &mut self,
        issuers: &[IssuerPublicKey],
    ) -> Result<VerifiedCard, CardError> {
        let certificate = self.certificate()?;
        let issuer = issuers
            .iter()
            .find(|issuer| issuer.key_id() == certificate.issuer_key_id())
            .ok_or(CardError::Certificate(CertError::UnknownIssuer))?;
        let card_public_key = certificate
            .verify(issuer.verifying_key())
            .map_err(CardError::Certificate)?;
        if certificate.card_id() != self.identity.card_id {
            return Err(CardError::CardIdMismatch);
        }
        Ok(VerifiedCard {
            card_id: certificate.card_id(),
            certificate,
            issuer: *issuer,
            card_public_key,
        })
    }

    /// Personalises a factory-state card with a random card id: the card generates its key pair,
    /// the issuer certifies it, the card stores the certificate.
    pub fn personalise(&mut self, issuer: &IssuerKey) -> Result<CardCertificate, CardError> {
        let mut card_id = [0u8; CARD_ID_LEN];
        rand_core::Rng::fill_bytes(&mut system_rng(), &mut card_id);
        self.personalise_with_id(issuer, card_id)
    }

    /// Personalises with a given card id.
    pub fn personalise_with_id(
        &mut self,
        issuer: &IssuerKey,
        card_id: [u8; CARD_ID_LEN],
    ) -> Result<CardCertificate, CardError> {
        if self.identity.lifecycle == Lifecycle::Personalised {
            return Err(CardError::Lifecycle {
                operation: "personalise",
                expected: Lifecycle::Factory,
                actual: self.identity.lifecycle,
            });
        }
        let card_public_key = self.execute(&GenerateCardKey { card_id })?;
        let certificate = issuer.certify_card(&card_id, &card_public_key);
        self.execute(&InstallCertificate {
            issuer_public_key: issuer.public_key().to_bytes(),
            certificate,
        })?;
        self.refresh_identity()?;
        Ok(certificate)
    }

    /// Opens a secure session with a card whose certificate was verified. Fails with
    /// [`CardError::Authentication`] when the card cannot derive the session keys (it does not
    /// hold the certified private key: a cloned certificate).
    pub fn open_session(&mut self, card: &VerifiedCard) -> Result<SecureSession<'_, T>, CardError> {
        let mut rng = system_rng();
        let ephemeral = p256::NonZeroScalar::generate_from_rng(&mut rng);
        let gate_public_key = encode_public_key(&VerifyingKey::from(
            p256::PublicKey::from_secret_scalar(&ephemeral),
        ));
        let mut gate_nonce = [0u8; NONCE_LEN];
        rand_core::Rng::fill_bytes(&mut rng, &mut gate_nonce);
        let answer = self.execute(&OpenSession {
            gate_public_key,
            gate_nonce,
        })?;
        let card_public_bytes = encode_public_key(&card.card_public_key);
        let transcript = transcript_hash(
            &card.card_id,
            &card_public_bytes,
            &gate_public_key,
            &gate_nonce,
            &answer.card_nonce,
        );
        let shared = ecdh(&ephemeral, &p256::PublicKey::from(&card.card_public_key));
        let keys = SessionKeys::derive(&shared, &transcript);
        let mut channel = SecureChannel::new(&keys);
        channel
            .check_confirmation(&transcript, &answer.confirmation)
            .map_err(|_| CardError::Authentication)?;
        Ok(SecureSession {
            card: self,
            channel,
            transcript,
            closed: false,
            certificate: card.certificate,
            card_public_key: card.card_public_key,
        })
    }

    /// APDUs exchanged so far (including GET RESPONSE and chained parts).
    pub fn apdu_count(&self) -> u64 {
        self.apdus
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// Gives the transport back.
    pub fn into_transport(self) -> T {
        self.transport
    }
}

/// An open secure session (the card proved it holds the certified key).
pub struct SecureSession<'c, T> {
    card: &'c mut Card<T>,
    channel: SecureChannel,
    transcript: [u8; 32],
    closed: bool,
    /// The verified card's certificate and key: meal receipts are checked against them.
    certificate: CardCertificate,
    card_public_key: VerifyingKey,
}

impl<T> std::fmt::Debug for SecureSession<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureSession")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl<'c, T: CardTransport> SecureSession<'c, T> {
    /// Runs one secure command: encrypts, sends, checks the response authenticates, decodes.
    pub fn execute<C: SecureCommand>(&mut self, command: &C) -> Result<C::Output, CardError> {
        if self.closed {
            return Err(CardError::SessionClosed);
        }
        let (p1, p2) = command.p1_p2();
        let header = [C::INS, p1, p2];
        let mut body = command.plaintext();
        let tag = self.channel.seal_command(header, &mut body);
        let mut data = body.to_vec();
        data.extend_from_slice(&tag);
        let apdu = Command {
            cla: cla::PROPRIETARY,
            ins: C::INS,
            p1,
            p2,
            data: Data::Plain(data),
            le: Some(256),
        };
        let response = exchange(
            &mut self.card.transport,
            &apdu,
            self.card.mode,
            &mut self.card.apdus,
            C::NAME,
        )
        .inspect_err(|_| self.closed = true)?;
        let Some(body_len) = response.data.len().checked_sub(TAG_LEN) else {
            self.closed = true;
            return Err(match response.status {
                StatusWord::SecureMessagingIncorrect | StatusWord::SecurityStatusNotSatisfied => {
                    CardError::Authentication
                }
                status => CardError::Status {
                    command: C::NAME,
                    status,
                },
            });
        };
        let mut plain = Zeroizing::new(response.data[..body_len].to_vec());
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&response.data[body_len..]);
        if self
            .channel
            .open_response(header, response.status.to_bytes(), &mut plain, &tag)
            .is_err()
        {
            self.closed = true;
            return Err(CardError::Authentication);
        }
        C::decode(response.status, &plain)
    }

    /// Sends the probe; the card answers match (with the slot kind), no match (with tries left)
    /// or blocked. The answer authenticates under the session keys. The card applies its default
    /// profile (`balanced`); [`SecureSession::verify_palm_under`] names one.
    pub fn verify_palm(&mut self, probe: &Template) -> Result<VerifyOutcome, CardError> {
        self.execute(&VerifyPalm::new(
            verify_profile::DEFAULT,
            core::slice::from_ref(probe),
        )?)
    }

    /// As [`SecureSession::verify_palm`], the card comparing with the threshold of `profile`
    /// (carried in P1, authenticated with the command). A card before applet 1.2 answers `6A86`
    /// ([`CardError::Status`]) for any profile but its default, without spending a try.
    pub fn verify_palm_under(
        &mut self,
        profile: Profile,
        probe: &Template,
    ) -> Result<VerifyOutcome, CardError> {
        self.verify_palm_posed(profile, core::slice::from_ref(probe))
    }

    /// As [`SecureSession::verify_palm_under`] with the probe cut at several poses, the pose
    /// found first (`palmgate_matcher::extract::Probe::poses`): the card keeps the closest of
    /// every pose against every enrolled template, under `profile`'s threshold for that many
    /// poses. A card before applet 1.4 compares one pose: it is sent the first only (see
    /// [`Card::probe_poses_compared`]).
    ///
    /// # Errors
    /// [`CardError::ProbePoses`] for no pose or more than [`MAX_PROBE_POSES`], before anything
    /// is sent; otherwise as [`SecureSession::verify_palm`].
    pub fn verify_palm_posed(
        &mut self,
        profile: Profile,
        poses: &[Template],
    ) -> Result<VerifyOutcome, CardError> {
        // Refused whatever the card: an old card does not hide a caller's mistake.
        if poses.is_empty() || poses.len() > MAX_PROBE_POSES {
            return Err(CardError::ProbePoses { given: poses.len() });
        }
        let sent = &poses[..self.card.probe_poses_compared(poses.len())];
        self.execute(&VerifyPalm::new(verify_profile::encode(profile), sent)?)
    }

    /// As [`SecureSession::verify_palm`] with an already encoded probe (sent as is).
    pub fn verify_palm_encoded(
        &mut self,
        probe: &[u8; TEMPLATE_LEN],
    ) -> Result<VerifyOutcome, CardError> {
        self.execute(&VerifyPalm::encoded(
            verify_profile::DEFAULT,
            core::slice::from_ref(probe),
        )?)
    }

    /// Asks the card for one meal of `request.period` (needs a palm match earlier in this
    /// session; one match serves at most one meal). `Served` carries the card's receipt, already
    /// checked against this card's certified key. A card whose applet predates meals gives
    /// `Unsupported` (nothing is sent when its identity says so; if it answers `6D00` the
    /// session is closed, since the card never took the command).
    ///
    /// On a transport error (card pulled) the meal may or may not be counted: call
    /// [`SecureSession::recover_meal_receipt`] in a new session and compare with
    /// [`MealReceipt::answers`]; never serve a meal without the receipt.
    pub fn redeem_meal(&mut self, request: &MealRequest) -> Result<MealOutcome, CardError> {
        if request.allowance == 0 {
            return Err(CardError::InvalidArgument("meal allowance must be 1..=255"));
        }
        if self.card.identity.applet_version < MEAL_APPLET_VERSION {
            return Ok(MealOutcome::Unsupported);
        }
        let answer = match self.execute(&RedeemMeal { request: *request }) {
            Ok(answer) => answer,
            Err(CardError::Status {
                status: StatusWord::InsNotSupported,
                ..
            }) => return Ok(MealOutcome::Unsupported),
            Err(error) => return Err(error),
        };
        match answer {
            MealAnswer::Served(receipt) => {
                let receipt = self.check_meal_receipt(RedeemMeal::NAME, receipt)?;
                if !receipt.answers(request) {
                    return Err(CardError::MalformedResponse {
                        command: RedeemMeal::NAME,
                        reason: "the receipt is not for the meal asked for",
                    });
                }
                Ok(MealOutcome::Served(receipt))
            }
            MealAnswer::AllowanceUsed { count, allowance } => {
                Ok(MealOutcome::AllowanceUsed { count, allowance })
            }
        }
    }

    /// The meal receipt the card keeps from its last receipt-bearing command (GET RECEIPT), if
    /// that was a meal: after a REDEEM MEAL whose answer was lost, `Some` receipt that
    /// [`MealReceipt::answers`] the request means the meal was counted (serve it), anything else
    /// means it was not (the card stores the count and the receipt in one write). Needs no palm
    /// match. `None` for a card whose applet predates meals (nothing is sent).
    pub fn recover_meal_receipt(&mut self) -> Result<Option<MealReceipt>, CardError> {
        if self.card.identity.applet_version < MEAL_APPLET_VERSION {
            return Ok(None);
        }
        let kept = match self.execute(&GetReceipt) {
            Ok(Some(kept)) => kept,
            Ok(None) => return Ok(None),
            // The kept receipt needs an authority to read: a deletion receipt, not a meal's.
            Err(CardError::Status {
                status: StatusWord::SecurityStatusNotSatisfied,
                ..
            }) => return Ok(None),
            Err(error) => return Err(error),
        };
        if kept.instruction != ins::REDEEM_MEAL {
            return Ok(None);
        }
        let receipt =
            SignedMealReceipt::decode(&kept.receipt).map_err(|_| CardError::MalformedResponse {
                command: GetReceipt::NAME,
                reason: "the kept meal receipt is malformed",
            })?;
        self.check_meal_receipt(GetReceipt::NAME, receipt).map(Some)
    }

    /// Checks that a receipt from the card is this card's and signed by its certified key.
    fn check_meal_receipt(
        &self,
        command: &'static str,
        receipt: SignedMealReceipt,
    ) -> Result<MealReceipt, CardError> {
        let source = match receipt.verify(&self.card_public_key) {
            Ok(fields) if fields.card_id == self.certificate.card_id() => {
                return Ok(MealReceipt::new(receipt, self.certificate));
            }
            Ok(_) => MealReceiptError::CardIdMismatch,
            Err(error) => MealReceiptError::Signature(error),
        };
        Err(CardError::MealReceipt { command, source })
    }

    /// Proves an enrolment authority (signature over this session's transcript).
    pub fn prove_authority(
        mut self,
        authority: &EnrolmentAuthority,
    ) -> Result<EnrolmentSession<'c, T>, CardError> {
        let signature = authority.prove(&self.transcript);
        self.execute(&ProveAuthority {
            certificate: *authority.certificate(),
            signature,
        })?;
        Ok(EnrolmentSession { session: self })
    }

    /// The session transcript hash.
    pub fn transcript(&self) -> &[u8; 32] {
        &self.transcript
    }

    /// The card.
    pub fn card(&mut self) -> &mut Card<T> {
        self.card
    }
}

/// A session in which an enrolment authority was proven.
#[derive(Debug)]
pub struct EnrolmentSession<'c, T> {
    session: SecureSession<'c, T>,
}

impl<'c, T: CardTransport> EnrolmentSession<'c, T> {
    /// Enrols `template` into `slot` (below the card's `slot_capacity`: six since applet 1.8,
    /// four before).
    pub fn enrol(
        &mut self,
        slot: u8,
        kind: SlotKind,
        template: &Template,
    ) -> Result<(), CardError> {
        if slot >= self.session.card.identity.slot_capacity {
            return Err(CardError::InvalidArgument(
                "slot index beyond the card's slots",
            ));
        }
        self.enrol_encoded(slot, kind, &Zeroizing::new(template.encode()))
    }

    /// Enrols an encoded template as is.
    pub fn enrol_encoded(
        &mut self,
        slot: u8,
        kind: SlotKind,
        template: &[u8; TEMPLATE_LEN],
    ) -> Result<(), CardError> {
        self.session.execute(&Enrol {
            slot,
            kind,
            template: Zeroizing::new(*template),
        })
    }

    /// Sets the card's profile floor: from now on its VERIFY PALM applies the stricter of the
    /// profile a gate names and `floor` (`None` removes the floor). ERASE clears it. Send it
    /// before the templates, so that a card is never left with templates and without the floor
    /// asked for.
    ///
    /// # Errors
    /// [`CardError::AppletTooOld`] for a card before applet 1.5 (whatever `floor`), before
    /// anything is sent; otherwise as any secure command.
    pub fn set_profile_floor(&mut self, floor: Option<Profile>) -> Result<(), CardError> {
        let card = &self.session.card;
        if !card.keeps_profile_floor() {
            return Err(CardError::AppletTooOld {
                operation: SetProfileFloor::NAME,
                required: PROFILE_FLOOR_APPLET_VERSION,
                actual: card.identity.applet_version,
            });
        }
        self.session.execute(&SetProfileFloor { floor })
    }

    /// Sets the retry counter limit (1..=10) and resets the counter to it.
    pub fn set_policy(&mut self, max_tries: u8) -> Result<(), CardError> {
        if max_tries == 0 || max_tries > MAX_TRIES_LIMIT {
            return Err(CardError::InvalidArgument("max tries must be 1..=10"));
        }
        self.session.execute(&SetPolicy { max_tries })
    }

    /// Restores the retry counter to its limit.
    pub fn reset_retry_counter(&mut self) -> Result<(), CardError> {
        self.session.execute(&ResetRetryCounter)
    }

    /// Erases every template; returns the card-signed deletion receipt.
    pub fn erase(&mut self, timestamp: u64) -> Result<DeletionReceipt, CardError> {
        self.session.execute(&Erase { timestamp })
    }

    /// The receipt the card keeps from its last receipt-bearing command (GET RECEIPT), `None`
    /// when it keeps none.
    pub fn last_receipt(&mut self) -> Result<Option<KeptReceipt>, CardError> {
        self.session.execute(&GetReceipt)
    }

    /// After an ERASE whose answer was lost (card pulled between the card storing the erase and
    /// answering): the deletion receipt of the erase made with `timestamp`, if the card did it.
    /// `None` means the card kept no receipt for that erase, so the erase did not happen (the
    /// card stores the erase and its receipt in one write) and may be sent again.
    pub fn recover_erase_receipt(
        &mut self,
        timestamp: u64,
    ) -> Result<Option<DeletionReceipt>, CardError> {
        let Some(kept) = self.last_receipt()? else {
            return Ok(None);
        };
        if kept.instruction != ins::ERASE {
            return Ok(None);
        }
        let receipt = DeletionReceipt::decode(&kept.receipt).map_err(CardError::Certificate)?;
        Ok((receipt.fields().gate_timestamp == timestamp).then_some(receipt))
    }

    /// Verifies a probe (as in a gate session).
    pub fn verify_palm(&mut self, probe: &Template) -> Result<VerifyOutcome, CardError> {
        self.session.verify_palm(probe)
    }

    /// Verifies a probe under `profile` (as in a gate session).
    pub fn verify_palm_under(
        &mut self,
        profile: Profile,
        probe: &Template,
    ) -> Result<VerifyOutcome, CardError> {
        self.session.verify_palm_under(profile, probe)
    }

    /// Verifies a probe cut at several poses under `profile` (as in a gate session).
    pub fn verify_palm_posed(
        &mut self,
        profile: Profile,
        poses: &[Template],
    ) -> Result<VerifyOutcome, CardError> {
        self.session.verify_palm_posed(profile, poses)
    }

    /// The underlying session.
    pub fn session(&mut self) -> &mut SecureSession<'c, T> {
        &mut self.session
    }
}

/// A deletion receipt together with the card certificate, so that anyone holding the issuer
/// public key can verify it: `receipt(130) | card certificate(158)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiptBundle {
    /// The card-signed receipt.
    pub receipt: DeletionReceipt,
    /// The certificate of the card that signed it.
    pub certificate: CardCertificate,
}

impl ReceiptBundle {
    /// Encodes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.receipt.as_bytes().to_vec();
        out.extend_from_slice(self.certificate.as_bytes());
        out
    }

    /// Decodes (not verified).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        const RECEIPT: usize = crate::protocol::receipt::RECEIPT_LEN;
        if bytes.len() != RECEIPT + crate::protocol::cert::CARD_CERT_LEN {
            return Err(CertError::Malformed);
        }
        Ok(Self {
            receipt: DeletionReceipt::decode(&bytes[..RECEIPT])?,
            certificate: CardCertificate::decode(&bytes[RECEIPT..])?,
        })
    }

    /// Verifies the certificate against the issuers, then the receipt against the card key.
    pub fn verify(
        &self,
        issuers: &[IssuerPublicKey],
    ) -> Result<crate::protocol::receipt::ReceiptFields, CertError> {
        let issuer = issuers
            .iter()
            .find(|issuer| issuer.key_id() == self.certificate.issuer_key_id())
            .ok_or(CertError::UnknownIssuer)?;
        let card_key = self.certificate.verify(issuer.verifying_key())?;
        let fields = self.receipt.verify(&card_key)?;
        if fields.card_id != self.certificate.card_id() {
            return Err(CertError::Malformed);
        }
        Ok(fields)
    }
}
