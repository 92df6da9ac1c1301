//! `osdp_ISTAT`: command code 0x65, no data.

super::no_data_command!(
    /// Input status request.
    InputStatus,
    0x65
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_no_data() {
        assert_eq!(CODE, 0x65);
        assert_eq!(InputStatus::decode(&[]), Ok(InputStatus));
        assert!(InputStatus::decode(&[0]).is_err());
        assert!(InputStatus.encode().is_empty());
    }
}
