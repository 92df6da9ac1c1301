//! The OSDP PD's reports in the gate's log (the ones a facility manager must hear of are also
//! published: [`super::alarms`]).

use palmgate_panel::osdp::pd::PdEvent;

use super::answers::color_name;

/// Logs what the PD reports: the secure channel's refusals are warnings (a wrong key, a bad
/// MAC: someone or something on the bus is not the commissioned panel).
pub(crate) fn report(event: &PdEvent) {
    match event {
        PdEvent::SecureChannel { default_key: true } => {
            tracing::warn!("OSDP secure channel up with the default key SCBK-D (install mode)");
        }
        PdEvent::SecureChannel { default_key: false } => {
            tracing::info!("OSDP secure channel up");
        }
        PdEvent::KeyInstalled => {
            tracing::info!("OSDP: the panel installed its key (KEYSET); install mode is over");
        }
        PdEvent::SessionExpired => tracing::info!("OSDP secure channel session expired"),
        PdEvent::Refused(refusal) => {
            tracing::warn!(reason = %refusal, "OSDP secure channel refused");
        }
        PdEvent::ComSet(settings) => tracing::info!(
            address = settings.address,
            baud = settings.baud,
            "OSDP: the panel set new communication settings (kept for the next start)"
        ),
        PdEvent::ComSetNotStored(reason) => {
            tracing::error!(%reason, "OSDP: the panel's COMSET could not be stored: refused");
        }
        PdEvent::CardDelivered { bits } => {
            tracing::debug!(bits, "OSDP: card data collected by the panel");
        }
        PdEvent::CardExpired { bits } => {
            tracing::warn!(
                bits,
                "OSDP: card data not collected by the panel in time: dropped"
            );
        }
        PdEvent::Led(command) => tracing::debug!(
            permanent = command
                .permanent
                .map_or_else(|| "unchanged".to_string(), |p| color_name(p.on_color)),
            "OSDP: reader LED set by the panel"
        ),
        PdEvent::Buzzer(command) => {
            tracing::debug!(count = command.count, "OSDP: buzzer set by the panel");
        }
        PdEvent::Nak { command, reason } => {
            tracing::warn!(command, reason, "OSDP: command refused with a NAK");
        }
        other => tracing::debug!(?other, "OSDP"),
    }
}
